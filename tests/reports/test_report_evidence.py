"""reports.verdicts: evidence of observation (presence of each metric), counter deltas, relative statistics and
guardrail aborts, on synthetic runs whose frames are built here."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from blueprints.record import CampaignRecord
from reports.frames import load_run, ns
from reports.results import analyse
from reports.stats import slo_density
from reports.verdicts import evaluate_all, overall
from tests.reports.make_fixture import make_run

STAGE = "scale-to-zero"


def _variant(base: Path, out: Path, observables: list[dict[str, Any]], expectations: list[str],
             make: Any, guardrail_refutes: bool | None = None) -> Path:
    """A copy of a synthetic run with extra observables, only the given expectations, and frames from ``make``
    for each row an observable names (``_rows``: (observable, series); default its own one series)."""
    rec = CampaignRecord.model_validate_json((base / "record.json").read_text())
    bp = dict(rec.blueprint)
    bp["observables"] = [*bp["observables"], *_clean(observables)]
    bp["hypothesis"] = {"belief": bp["hypothesis"]["belief"], "expectations": expectations}
    if guardrail_refutes is not None:
        bp["guardrails"] = [{**g, "refutes": guardrail_refutes} for g in bp["guardrails"]]
    frames = pd.read_parquet(base / "frames.parquet")
    t = pd.date_range(frames["timestamp"].min(), frames["timestamp"].max(), freq="1s")
    rows = [pd.DataFrame({"observable": name, "series": series, "timestamp": t, "value": make(name, series, t, rec)})
            for o in observables for name, series in o.get("_rows", [(o["name"], "")])]
    out.mkdir(parents=True)
    pd.concat([frames, *rows], ignore_index=True).to_parquet(out / "frames.parquet", index=False)
    (out / "record.json").write_text(rec.model_copy(update={"blueprint": bp}).model_dump_json())
    return out


def _window(rec: CampaignRecord, kind: str, stage: str | None = STAGE) -> tuple[pd.Timestamp, pd.Timestamp]:
    w = next(w for w in rec.windows if w.kind == kind and (kind == "baseline" or w.stage == stage))
    return pd.Timestamp(w.start), pd.Timestamp(w.end)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One confirmed synthetic run to build variants on."""
    return make_run(tmp_path_factory.mktemp("evidence") / "base", "confirmed")


def _obs(name: str, query: str, rows: list[tuple[str, str]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "query": query, **extra, **({"_rows": rows} if rows else {})}


def _clean(observables: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in o.items() if not k.startswith("_")} for o in observables]


def _build(base: Path, tmp: Path, observables: list[dict[str, Any]], expectations: list[str], make: Any,
           **kw: Any) -> Path:
    return _variant(base, tmp / "run", observables, expectations, make, **kw)


def test_delta_counts_only_growth_inside_the_window(base: Path, tmp_path: Path) -> None:
    """delta(x) is the counter's growth inside the window (a reset counts from 0); its lifetime total is not."""
    def make(name: str, series: str, t: pd.DatetimeIndex, rec: CampaignRecord) -> np.ndarray:
        start, end = _window(rec, "fault")
        inside = (t >= start) & (t < end)
        v = 1000.0 + np.cumsum(inside.astype(float))          # 1000 before the window, +1 per second inside
        reset_at = np.flatnonzero(inside)[len(np.flatnonzero(inside)) // 2]
        v[reset_at:] -= v[reset_at] - 2.0                      # the process restarts inside the window: 2, 3, ...
        return v

    obs = [_obs("reboots", "sum(reboots_total)")]
    run_dir = _build(base, tmp_path, obs, ["delta(reboots) >= 1 during fault", "max(reboots) >= 1 during fault",
                                           "delta(reboots) <= 0 during fault in stage scale-to-zero"], make)
    run = load_run(run_dir)
    results = {r.text: r for r in evaluate_all(run)}
    s = next(x for x in results["delta(reboots) >= 1 during fault"].stages if x.stage == STAGE)
    t, v = run.series["reboots"][0].t, run.series["reboots"][0].v
    w = run.windows("fault", STAGE)[0]
    lo, hi = np.searchsorted(t, [ns(w.start), ns(w.end)])
    seq = v[lo - 1:hi]
    want = sum(b - a if b >= a else b for a, b in itertools.pairwise(seq))
    assert s.measured == pytest.approx(want) and 0 < want < 1000
    assert results["delta(reboots) <= 0 during fault in stage scale-to-zero"].verdict == "refuted"
    other = next(x for x in results["delta(reboots) >= 1 during fault"].stages if x.stage != STAGE)
    assert other.verdict == "refuted" and other.measured == 0  # nothing grew in the other stage
    assert results["max(reboots) >= 1 during fault"].verdict == "confirmed"  # the lifetime total proves nothing


def test_counter_first_seen_in_the_window_counts_from_zero(base: Path, tmp_path: Path) -> None:
    """A labelled counter that appears inside a fault window (created at its first increment) counts from 0."""
    def make(name: str, series: str, t: pd.DatetimeIndex, rec: CampaignRecord) -> np.ndarray:
        start, _ = _window(rec, "fault")
        if name == "presence:actions_total":
            return np.ones(len(t))
        return np.where(t >= start + pd.Timedelta(seconds=3), 1.0, np.nan)  # absent until its first increment

    obs = [_obs("xid79", 'sum(actions_total{code="79"})',
                rows=[("xid79", ""), ("presence:actions_total", "")])]
    run = load_run(_build(base, tmp_path, obs, ["delta(xid79) >= 1 during fault in stage scale-to-zero"], make))
    r = evaluate_all(run)[0]
    assert r.verdict == "confirmed" and r.stages[0].measured == 1.0


def test_missing_metric_behind_a_constant_fallback_is_inconclusive(base: Path, tmp_path: Path) -> None:
    """'or vector(0)' over a metric that never had a series gives 0s, but the window is inconclusive, naming it."""
    def make(name: str, series: str, t: pd.DatetimeIndex, rec: CampaignRecord) -> np.ndarray:
        return np.zeros(len(t))  # the fallback's 0 for the observable, and a presence count of 0

    obs = [_obs("servfails", "sum(rate(dns_servfail_total[5s])) or vector(0)",
                rows=[("servfails", ""), ("presence:dns_servfail_total", "")])]
    run = load_run(_build(base, tmp_path, obs, ["max(servfails) <= 0 during fault"], make))
    r = evaluate_all(run)[0]
    assert r.verdict == "inconclusive"
    assert all(s.missing == ["dns_servfail_total"] for s in r.stages)
    assert "no data for dns_servfail_total" in r.reason


def test_samples_without_evidence_do_not_count(base: Path, tmp_path: Path) -> None:
    """Where the metric had no series the fallback's value is dropped; the rest of the window still decides."""
    def make(name: str, series: str, t: pd.DatetimeIndex, rec: CampaignRecord) -> np.ndarray:
        start, end = _window(rec, "fault")
        gap = (t >= start) & (t < start + (end - start) / 2)
        if name.startswith("presence:"):
            return np.where(gap, 0.0, 2.0)
        return np.where(gap, 0.0, 5.0)  # 0 from 'or vector(0)' while the exporter was gone

    obs = [_obs("rps", "sum(rate(reqs_total[5s])) or vector(0)", rows=[("rps", ""), ("presence:reqs_total", "")])]
    run = load_run(_build(base, tmp_path, obs, ["rps >= 1 during fault in stage scale-to-zero"], make))
    r = evaluate_all(run)[0]
    w = run.windows("fault", STAGE)[0]
    _, v = run.pooled("rps", ns(w.start), ns(w.end))
    assert r.verdict == "confirmed" and r.stages[0].n == int(np.count_nonzero(v == 5.0)) < v.size


def test_p99_amplification_and_slo_density_statistics(base: Path, tmp_path: Path) -> None:
    """p99_amplification is p99(fault) / p99(baseline); slo_violations_per_min matches stats.slo_density."""
    lines = ["p99_amplification(api_latency) <= 1.8 during fault in stage scale-to-zero",
             "slo_violations_per_min(dns_success_ratio) <= 3 during fault in stage scale-to-zero"]
    run = load_run(_build(base, tmp_path, [], lines, lambda *a: None))
    amp, slo = evaluate_all(run)
    bw, fw = run.baseline(), run.windows("fault", STAGE)[0]
    assert bw is not None
    base_v = run.pooled("api_latency", ns(bw.start), ns(bw.end))[1]
    fault_v = run.pooled("api_latency", ns(fw.start), ns(fw.end))[1]
    assert amp.stages[0].measured == pytest.approx(np.percentile(fault_v, 99) / np.percentile(base_v, 99))
    want = slo_density(run.series["dns_success_ratio"], ns(fw.start), ns(fw.end), (">=", 0.99))
    assert slo.stages[0].measured == pytest.approx(want)


@pytest.mark.parametrize("refutes,want", [(True, "refuted"), (False, "inconclusive")])
def test_guardrail_abort_is_never_confirmed(base: Path, tmp_path: Path, refutes: bool, want: str) -> None:
    """A stage aborted by a guardrail is refuted when the guardrail refutes the belief, else inconclusive; the
    overall reason starts with which guardrail fired, when, and its value."""
    aborted = make_run(tmp_path / "aborted", "aborted")
    run = load_run(_build(aborted, tmp_path, [], ["mean(gpu_util) >= 0 during fault in stage corefile-servfail"],
                          lambda *a: None, guardrail_refutes=refutes))
    results = evaluate_all(run)
    assert results[0].verdict == want
    verdict = overall(run, results)
    assert verdict.verdict == want and verdict.reason.startswith("guardrail 'dns-floor' fired at ")
    assert "with value 0.41" in verdict.reason and verdict.guardrails[0].refutes is refutes


def test_report_lists_refutability_warnings(base: Path, tmp_path: Path) -> None:
    """The results carry the blueprint's refutability warnings, with their paths, beside the verdict."""
    run = load_run(_build(base, tmp_path, [], ["max(dns_success_ratio) >= 0.5 during fault"], lambda *a: None))
    res = analyse(run)
    assert res.warnings and res.warnings[0].startswith("hypothesis.expectations[0]: ")


def test_report_states_the_error_budget_before_and_what_the_run_consumed(base: Path, tmp_path: Path) -> None:
    """The record's error-budget events reach results.json (by phase) and a line under the verdict in the HTML."""
    from blueprints.record import TimelineEvent
    from reports import build

    run_dir = _build(base, tmp_path, [], ["max(dns_success_ratio) >= 0.5 during fault"], lambda *a: None)
    rec = CampaignRecord.model_validate_json((run_dir / "record.json").read_text())
    at = rec.started_at
    events = [*rec.events,
              TimelineEvent(at=at, kind="error-budget", message="87.5% of the error budget remains (at least 25% "
                            "needed)", data={"phase": "before", "remaining": 0.875, "mean_sli": 0.99875}),
              TimelineEvent(at=at, kind="error-budget", message="the run consumed 0.120% of the error budget",
                            data={"phase": "after", "consumed": 0.0012, "mean_sli": 0.97, "run_s": 300.0})]
    (run_dir / "record.json").write_text(rec.model_copy(update={"events": events}).model_dump_json())
    res = analyse(load_run(run_dir))
    assert res.error_budget["before"]["remaining"] == 0.875 and res.error_budget["after"]["consumed"] == 0.0012
    build(run_dir, tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    assert ("<b>Error budget:</b> 87.5% of the error budget remains (at least 25% needed). The run consumed 0.120% "
            "of the error budget.") in html


def test_a_warn_or_pause_breach_is_not_a_guardrail_firing(base: Path, tmp_path: Path) -> None:
    """Breaches recorded at severity warn or pause did not abort their stage: in an aborted stage they are not
    counted as the guardrail firing that decided the verdict (the abort's own breach still is)."""
    from reports.verdicts import firings

    aborted = make_run(tmp_path / "aborted", "aborted")
    run_dir = _build(aborted, tmp_path, [], ["mean(gpu_util) >= 0 during fault in stage corefile-servfail"],
                     lambda *a: None, guardrail_refutes=True)
    rec = CampaignRecord.model_validate_json((run_dir / "record.json").read_text())
    breach = next(e for e in rec.events if e.kind == "guardrail-breach")
    warned = [breach.model_copy(update={"data": {**breach.data, "severity": s, "guardrail": f"{s}-one"}})
              for s in ("warn", "pause")]
    (run_dir / "record.json").write_text(rec.model_copy(update={"events": [*warned, *rec.events]}).model_dump_json())
    assert [f.guardrail for f in firings(load_run(run_dir))] == ["dns-floor"]
