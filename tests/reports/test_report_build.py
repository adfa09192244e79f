"""reports.build: every output written, comparison rules, history read then recorded."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from blueprints.record import CampaignRecord
from reports import HistoryStore, ReportError, RunResults, build
from reports.history import LOW_INFORMATION_RUNS
from tests.reports.make_fixture import T0, make_run


def test_build_writes_every_output(any_run: Path, tmp_path: Path) -> None:
    """HTML, record, frames, results, JUnit and summary are written and readable."""
    p = build(any_run, tmp_path)
    for f in (p.html, p.record, p.frames, p.results, p.junit, p.summary):
        assert f.exists() and f.stat().st_size > 0
    rec = CampaignRecord.model_validate_json(p.record.read_text())
    assert rec.frames_file == "frames.parquet"
    res = RunResults.model_validate_json(p.results.read_text())
    assert res.overall.verdict == p.verdict
    assert len(pd.read_parquet(p.frames)) > 0


def test_default_out_dir_and_csv_frames(synthetic: dict[str, Path], tmp_path: Path) -> None:
    """Without out_dir the report goes to run_dir/report; frames can be written as CSV."""
    run = make_run(tmp_path / "run", "confirmed", observe_s=20, recovery_s=40, baseline_s=30)
    p = build(run, frames_format="csv")
    assert p.out_dir == run / "report" and p.frames.name == "frames.csv"
    assert set(pd.read_csv(p.frames).columns) >= {"observable", "series", "timestamp", "value"}


def test_compare_refuses_another_campaign(synthetic: dict[str, Path], tmp_path: Path) -> None:
    """Comparing runs of different campaigns raises ReportError naming both."""
    other = make_run(tmp_path / "other", "confirmed", observe_s=20, recovery_s=40, baseline_s=30)
    rec = json.loads((other / "record.json").read_text())
    rec["campaign"] = "another-campaign"
    (other / "record.json").write_text(json.dumps(rec))
    with pytest.raises(ReportError, match="another-campaign"):
        build(synthetic["confirmed"], tmp_path / "out", compare=[other])


def test_history_flags_low_information_on_repeated_confirmation(tmp_path: Path) -> None:
    """After N confirmed runs on one topology, the next run's report is flagged low-information."""
    with HistoryStore(tmp_path / "history.sqlite") as store:
        for i in range(LOW_INFORMATION_RUNS + 1):
            run = make_run(tmp_path / f"r{i}", "confirmed", start=T0 + timedelta(hours=i), run_id=f"r{i}", seed=i,
                           observe_s=20, recovery_s=40, baseline_s=30)
            p = build(run, history=store)
            res = RunResults.model_validate_json(p.results.read_text())
            assert res.low_information is (i == LOW_INFORMATION_RUNS)
        assert len(store.runs("dns-outage-drill")) == LOW_INFORMATION_RUNS + 1
        assert "Low-information run" in p.html.read_text()


def test_dry_runs_are_not_stored_in_history(tmp_path: Path) -> None:
    """A dry run's report is built but the run does not enter the history."""
    run = make_run(tmp_path / "dry", "confirmed", observe_s=20, recovery_s=40, baseline_s=30)
    rec = json.loads((run / "record.json").read_text())
    rec["dry_run"] = True
    (run / "record.json").write_text(json.dumps(rec))
    with HistoryStore(tmp_path / "history.sqlite") as store:
        assert build(run, history=store).html.exists()
        assert store.runs("dns-outage-drill") == []
