"""reports.frames: loading run directories, splitting long-form frames, window slicing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reports.errors import ReportError
from reports.frames import load_run, read_frames, split_series


def test_every_row_lands_in_its_series(any_run: Path) -> None:
    """Splitting keeps every finite sample, each series sorted by time."""
    run = load_run(any_run)
    df = read_frames(any_run / (run.record.frames_file or "frames.parquet"))
    finite = df[np.isfinite(df["value"].astype(float))]
    assert sum(s.v.size for ss in run.series.values() for s in ss) == len(finite)
    for name, ss in run.series.items():
        assert {s.name for s in ss} == set(finite.loc[finite["observable"] == name, "series"])
        assert all(np.all(np.diff(s.t) >= 0) for s in ss)


def test_csv_frames_load_like_parquet(synthetic: dict[str, Path], tmp_path: Path) -> None:
    """A CSV frames file gives the same series as the Parquet one."""
    src = synthetic["confirmed"]
    df = pd.read_parquet(src / "frames.parquet")
    df.to_csv(tmp_path / "frames.csv", index=False)
    a = split_series(df)
    b = split_series(read_frames(tmp_path / "frames.csv"))
    assert a.keys() == b.keys()
    for k in a:
        for x, y in zip(a[k], b[k], strict=True):
            assert x.name == y.name and np.array_equal(x.t, y.t) and np.allclose(x.v, y.v)


def test_non_finite_values_are_dropped() -> None:
    """NaN and inf samples (Prometheus 0/0) are not measurements and are dropped."""
    t = pd.to_datetime(["2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z"], utc=True)
    df = pd.DataFrame({"observable": "x", "series": "", "timestamp": t, "value": [1.0, np.nan, np.inf]})
    assert split_series(df)["x"][0].v.tolist() == [1.0]


def test_window_slice_is_half_open(synthetic: dict[str, Path]) -> None:
    """Series.between keeps start and drops end."""
    s = load_run(synthetic["confirmed"]).series["gpu_util"][0]
    t, _ = s.between(int(s.t[3]), int(s.t[6]))
    assert t.tolist() == s.t[3:6].tolist()


def test_bad_inputs_raise_report_error(tmp_path: Path) -> None:
    """A missing record, a broken record and frames without the columns all raise ReportError."""
    with pytest.raises(ReportError, match="cannot read"):
        load_run(tmp_path)
    (tmp_path / "record.json").write_text("{}")
    with pytest.raises(ReportError, match="not a valid run record"):
        load_run(tmp_path)
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "f.parquet")
    with pytest.raises(ReportError, match="lack columns"):
        read_frames(tmp_path / "f.parquet")


def test_unreadable_blueprint_still_lists_observables(synthetic: dict[str, Path], tmp_path: Path) -> None:
    """When the stored blueprint no longer validates, observables come from the frames so charts still render."""
    import json
    import shutil

    shutil.copytree(synthetic["confirmed"], tmp_path / "run")
    rec = json.loads((tmp_path / "run" / "record.json").read_text())
    rec["blueprint"] = {"name": "from-an-older-version"}
    (tmp_path / "run" / "record.json").write_text(json.dumps(rec))
    run = load_run(tmp_path / "run")
    assert run.campaign is None
    assert [o.name for o in run.observables()] == sorted(run.series)


def test_stage_approvals_appear_as_events(synthetic: dict[str, Path]) -> None:
    """A stage approval missing from the events is added to the timeline once; one already there is not doubled."""
    run = load_run(synthetic["confirmed"])
    assert sum(e.kind == "approval" for e in run.events()) == 1
    run.record = run.record.model_copy(update={"events": [e for e in run.record.events if e.kind != "approval"]})
    added = [e for e in run.events() if e.kind == "approval"]
    assert len(added) == 1 and added[0].stage == "corefile-servfail" and "go by alice" in added[0].message
