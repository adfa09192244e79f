"""reports.history: storing runs, reading an expectation's history, low-information and drift flags."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from reports.frames import load_run
from reports.history import LOW_INFORMATION_RUNS, HistoryStore, flags
from reports.verdicts import evaluate_all, overall
from tests.reports.make_fixture import T0, make_run


def _store_runs(store: HistoryStore, tmp: Path, scenarios: list[str], fp: str | None = None) -> None:
    for i, sc in enumerate(scenarios):
        run = load_run(make_run(tmp / f"{i}-{sc}", sc, start=T0 + timedelta(hours=i), run_id=f"r{i}", seed=i,
                                observe_s=20, recovery_s=40, baseline_s=30))
        if fp is not None and i == len(scenarios) - 1:
            run.record.target.fingerprint = fp
        res = evaluate_all(run)
        store.record_run(run.record, res, overall(run, res))


def test_history_newest_first_and_idempotent(tmp_path: Path) -> None:
    """Runs come back newest first, once each even when a run is recorded twice."""
    with HistoryStore(tmp_path / "h.sqlite") as store:
        _store_runs(store, tmp_path, ["confirmed", "refuted", "confirmed"])
        _store_runs(store, tmp_path, ["confirmed"])
        runs = store.runs("dns-outage-drill")
        assert [r.run_id for r in runs] == ["r2", "r1", "r0"]
        assert [r.verdict for r in runs] == ["confirmed", "refuted", "confirmed"]
        h = store.expectation_history("dns-outage-drill", "mean(dns_success_ratio) >= 0.5 during fault")
        assert [x.verdict for x in h] == ["confirmed", "refuted", "confirmed"]
        assert h[1].refuted_stages == ["scale-to-zero", "corefile-servfail"]
        assert store.expectation_history("dns-outage-drill", "mean(dns_success_ratio) >= 0.5 during fault",
                                         exclude_run="r2")[0].run_id == "r1"


def test_low_information_after_n_confirmations(tmp_path: Path) -> None:
    """Confirmed on the last N runs on the same topology flags low information; a refutation among them does not."""
    with HistoryStore(tmp_path / "h.sqlite") as store:
        _store_runs(store, tmp_path, ["refuted"] + ["confirmed"] * LOW_INFORMATION_RUNS)
        h = store.expectation_history("dns-outage-drill", "mean(dns_success_ratio) >= 0.5 during fault")
        fp = h[0].fingerprint
        assert flags(h, fp).low_information and not flags(h, fp).drift
        assert not flags(h[1:], fp).low_information


def test_drift_when_topology_changed_since_last_confirmation(tmp_path: Path) -> None:
    """A different fingerprint from the last confirmed run flags drift, and says which run."""
    with HistoryStore(tmp_path / "h.sqlite") as store:
        _store_runs(store, tmp_path, ["confirmed", "refuted"])
        h = store.expectation_history("dns-outage-drill", "mean(dns_success_ratio) >= 0.5 during fault")
        f = flags(h, "another-topology")
        assert f.drift and "r0" in f.reason and not f.low_information
