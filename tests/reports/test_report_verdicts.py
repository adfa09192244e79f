"""reports.verdicts: confirmed, refuted, inconclusive and unverified-fault cases, and the measured values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from blueprints.hypothesis import Expectation
from reports.frames import load_run
from reports.verdicts import combine, evaluate, evaluate_all, firings, overall
from tests.reports.helpers import raw_samples
from tests.reports.make_fixture import EXPECTED


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_overall_verdict_per_scenario(synthetic: dict[str, Path], scenario: str) -> None:
    """Each synthetic scenario gives the verdict it was built to give, with a reason in words."""
    run = load_run(synthetic[scenario])
    res = overall(run, evaluate_all(run))
    assert res.verdict == EXPECTED[scenario]
    assert res.reason


def test_unverified_fault_is_never_confirmed(synthetic: dict[str, Path]) -> None:
    """Every expectation touching the stage whose fault did not land is inconclusive, even though it measured fine."""
    run = load_run(synthetic["unverified"])
    for r in evaluate_all(run):
        first = [s for s in r.stages if s.stage == "scale-to-zero"]
        assert first and all(s.verdict == "inconclusive" for s in first)
        assert all(s.measured is not None for s in first)
        assert r.verdict == "inconclusive"
        assert "not verified" in r.reason


def test_refuted_reports_violations(synthetic: dict[str, Path]) -> None:
    """An 'every sample' expectation that fails counts its violating samples, independently recounted."""
    run = load_run(synthetic["refuted"])
    r = next(x for x in evaluate_all(run) if x.observable == "inference_rps")
    assert r.verdict == "refuted"
    fault = run.windows("fault", "scale-to-zero")[0]
    v = raw_samples(synthetic["refuted"], "inference_rps", pd.Timestamp(fault.start), pd.Timestamp(fault.end))["value"]
    assert r.stages[0].violations == int((v < 50).sum())
    assert r.stages[0].measured == pytest.approx(v.min())


def test_relative_threshold_uses_baseline_statistic(synthetic: dict[str, Path]) -> None:
    """'p99(x) <= 3 * baseline' compares with 3 × the baseline's p99 (scipy), per stage."""
    d = synthetic["confirmed"]
    run = load_run(d)
    r = next(x for x in evaluate_all(run) if x.observable == "api_latency")
    bw = run.baseline()
    assert bw is not None
    base = raw_samples(d, "api_latency", pd.Timestamp(bw.start), pd.Timestamp(bw.end))["value"].to_numpy()
    for s in r.stages:
        w = run.windows("fault", s.stage)[0]
        v = raw_samples(d, "api_latency", pd.Timestamp(w.start), pd.Timestamp(w.end))["value"].to_numpy()
        assert s.threshold == pytest.approx(3 * sps.scoreatpercentile(base, 99))
        assert s.measured == pytest.approx(sps.scoreatpercentile(v, 99))


def test_after_rollback_window_starts_at_rollback_plus_within(synthetic: dict[str, Path]) -> None:
    """'within 30s after rollback' looks at every sample from rollback + 30 s to the end of recovery."""
    d = synthetic["confirmed"]
    run = load_run(d)
    r = next(x for x in evaluate_all(run) if x.text.endswith("after rollback"))
    for s in r.stages:
        stage = next(o for o in run.record.stages if o.name == s.stage)
        rb = pd.Timestamp(max(f.rolled_back_at for f in stage.faults if f.rolled_back_at))
        end = pd.Timestamp(run.windows("recovery", s.stage)[0].end)
        v = raw_samples(d, "dns_success_ratio", rb + pd.Timedelta(seconds=30), end)["value"]
        assert s.n == v.size and s.measured == pytest.approx(v.min())


def test_no_samples_is_inconclusive(synthetic: dict[str, Path]) -> None:
    """An expectation over an observable that was never scraped is inconclusive, saying there were no samples."""
    run = load_run(synthetic["nodata"])
    r = next(x for x in evaluate_all(run) if x.observable == "dns_success_ratio")
    assert r.verdict == "inconclusive" and "no samples" in r.reason


def test_aborted_stage_counts_and_is_stated(synthetic: dict[str, Path]) -> None:
    """An aborted stage's (shortened) fault window still counts, and the reason names the abort."""
    run = load_run(synthetic["aborted"])
    r = evaluate_all(run)[0]
    aborted = next(s for s in r.stages if s.stage == "corefile-servfail")
    assert aborted.n > 0 and "aborted" in aborted.reason
    assert "aborted stages: corefile-servfail" in overall(run, evaluate_all(run)).reason


def test_missing_stage_window_is_inconclusive(synthetic: dict[str, Path]) -> None:
    """A stage-scoped expectation whose stage has no window (skipped) is inconclusive."""
    run = load_run(synthetic["confirmed"])
    run.record = run.record.model_copy(update={"windows": [w for w in run.record.windows
                                                           if w.stage != "scale-to-zero"]})
    e = Expectation.model_validate("inference_rps >= 50 during fault in stage scale-to-zero")
    res = evaluate(run, e, 0)
    assert res.verdict == "inconclusive" and "no fault window" in res.reason


def test_baseline_expectation_ignores_unverified_faults(synthetic: dict[str, Path]) -> None:
    """A baseline expectation is decided by the baseline alone, even when a fault did not land."""
    run = load_run(synthetic["unverified"])
    e = Expectation.model_validate("gpu_util >= 0.5 during baseline")
    assert evaluate(run, e, 0).verdict == "confirmed"
    e = Expectation.model_validate("max(gpu_util) <= 0.5 during baseline")
    assert evaluate(run, e, 0).verdict == "refuted"


@pytest.mark.parametrize("kinds,want", [(["confirmed", "refuted", "inconclusive"], "refuted"),
                                        (["confirmed", "inconclusive"], "inconclusive"),
                                        (["confirmed", "confirmed"], "confirmed"), ([], "inconclusive")])
def test_combine_rule(kinds: list[str], want: str) -> None:
    """Refuted beats inconclusive beats confirmed; nothing to decide is inconclusive."""
    assert combine(kinds) == want  # type: ignore[arg-type]


def test_verdicts_are_consistent(any_run: Path) -> None:
    """On every run: each expectation's verdict follows from its windows, and the overall from the expectations."""
    run = load_run(any_run)
    results = evaluate_all(run)
    assert results
    for r in results:
        assert r.verdict == combine([s.verdict for s in r.stages])
        for s in r.stages:
            if s.verdict == "confirmed":
                assert s.n > 0 and s.measured is not None and np.isfinite(s.measured)
    fired = ["refuted" if f.refutes else "inconclusive" for f in firings(run)]
    assert overall(run, results).verdict == combine([r.verdict for r in results] + fired)  # type: ignore[arg-type]
