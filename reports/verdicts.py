"""Hypothesis verdicts: each expectation measured per stage window, then combined into one overall verdict.

Semantics (see blueprints/hypothesis.py for the grammar):
- Samples of all series of the observable are pooled. Statistic ``all``: every sample must satisfy the
  comparison; the measured value shown is the worst sample. ``last``: the samples at the latest timestamp
  (the worst of them when several series). Percentiles use linear interpolation.
- ``K * baseline``: K times the same statistic over the baseline window (for ``all``: K times the baseline mean).
- Window ``fault``/``recovery``: every stage that has such a window (only ``stage`` when set); a stage-scoped
  expectation whose stage has no window is inconclusive. ``after-rollback``: every sample from the stage's
  rollback (its last fault's) + ``within`` to the end of its recovery window. ``baseline``: the baseline window.
- A fault that did not verifiably land makes its stage's results inconclusive (measurements are still shown);
  baseline expectations do not depend on faults. No samples → inconclusive. An aborted stage still counts,
  and the reason says so.
- Per expectation: refuted if any stage is refuted, else inconclusive if any is, else confirmed. Overall: the same
  rule over expectations.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from blueprints.hypothesis import Expectation
from reports.frames import F64, I64, Run, ns
from reports.stats import OPS, stage_rollback

VerdictKind = Literal["confirmed", "refuted", "inconclusive"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StageVerdict(_Out):
    """One expectation measured over one window."""

    stage: str | None
    window: str
    n: int
    measured: float | None = None
    threshold: float | None = None
    violations: int | None = None
    verdict: VerdictKind
    reason: str


class ExpectationResult(_Out):
    """One expectation's verdict across its windows."""

    index: int
    text: str
    observable: str
    verdict: VerdictKind
    reason: str
    stages: list[StageVerdict]


class Overall(_Out):
    """The hypothesis verdict, with why in words."""

    verdict: VerdictKind
    reason: str


def compare(value: float, op: str, threshold: float) -> bool:
    """Whether ``value op threshold`` holds (== with a relative tolerance of 1e-9)."""
    if op == "==":
        return math.isclose(value, threshold, rel_tol=1e-9, abs_tol=1e-12)
    return bool(OPS[op](np.asarray([value], dtype=np.float64), threshold)[0])


def statistic(stat: str, t: I64, v: F64, op: str) -> float:
    """One statistic of pooled samples (non-empty); for ``all``/``last`` the worst sample given ``op``."""
    worst = np.max if op in ("<=", "<") else np.min
    if stat == "all":
        if op == "==":
            return float(v[np.argmax(np.abs(v - np.median(v)))])
        return float(worst(v))
    if stat == "last":
        return float(worst(v[t == t.max()])) if op != "==" else float(v[np.argmax(t)])
    if stat == "mean":
        return float(v.mean())
    if stat == "min":
        return float(v.min())
    if stat == "max":
        return float(v.max())
    q = {"median": 50, "p50": 50, "p90": 90, "p95": 95, "p99": 99}[stat]
    return float(np.percentile(v, q))


def _threshold(run: Run, e: Expectation) -> tuple[float | None, str]:
    if not e.relative_to_baseline:
        return e.threshold, ""
    bw = run.baseline()
    if bw is None:
        return None, "no baseline window"
    t, v = run.pooled(e.observable, ns(bw.start), ns(bw.end))
    if v.size == 0:
        return None, "no baseline samples"
    base = float(v.mean()) if e.statistic == "all" else statistic(e.statistic, t, v, e.op)
    return e.threshold * base, ""


def _span(run: Run, e: Expectation, stage: str | None) -> tuple[int, int] | None:
    if e.window == "baseline":
        bw = run.baseline()
        return (ns(bw.start), ns(bw.end)) if bw else None
    kind = "recovery" if e.window == "after-rollback" else e.window
    found = run.windows(kind, stage)
    if not found:
        return None
    start, end = ns(found[0].start), ns(found[0].end)
    if e.window == "after-rollback" and stage is not None:
        rb = stage_rollback(run, stage)
        start = (rb if rb is not None else start) + int((e.within or timedelta(0)).total_seconds() * 1e9)
    return start, end


def _one(run: Run, e: Expectation, stage: str | None) -> StageVerdict:
    window = e.window
    span = _span(run, e, stage)
    where = f"stage {stage}" if stage else "baseline"
    if span is None or span[1] <= span[0]:
        return StageVerdict(stage=stage, window=window, n=0, verdict="inconclusive",
                            reason=f"no {window} window in {where}" if span is None else f"{window} window is empty")
    threshold, why = _threshold(run, e)
    t, v = run.pooled(e.observable, *span)
    if v.size == 0 or threshold is None:
        return StageVerdict(stage=stage, window=window, n=int(v.size), threshold=threshold, verdict="inconclusive",
                            reason=why or f"no samples of {e.observable} in the {window} window of {where}")
    measured = statistic(e.statistic, t, v, e.op)
    if e.statistic == "all":
        ok = np.isclose(v, threshold, rtol=1e-9, atol=1e-12) if e.op == "==" else OPS[e.op](v, threshold)
        violations = int(v.size - np.count_nonzero(ok))
        holds = violations == 0
    else:
        violations, holds = None, compare(measured, e.op, threshold)
    verdict: VerdictKind = "confirmed" if holds else "refuted"
    reason = f"{measured:.6g} {e.op} {threshold:.6g}" + ("" if holds else " does not hold")
    if violations:
        reason += f" ({violations} of {v.size} samples violate it)"
    outcome = next((s for s in run.record.stages if s.name == stage), None)
    if outcome is not None and e.window != "baseline":
        unverified = [f.id for f in outcome.faults if not f.verified]
        if unverified:
            verdict = "inconclusive"
            reason = f"fault {', '.join(unverified)} not verified to have landed; measured {reason}"
        if outcome.status == "aborted":
            reason += f"; stage {stage} was aborted ({outcome.reason or 'no reason given'})"
    return StageVerdict(stage=stage, window=window, n=int(v.size), measured=measured, threshold=threshold,
                        violations=violations, verdict=verdict, reason=reason)


def combine(kinds: list[VerdictKind]) -> VerdictKind:
    """Refuted if any is refuted, else inconclusive if any is (or none given), else confirmed."""
    if "refuted" in kinds:
        return "refuted"
    if "inconclusive" in kinds or not kinds:
        return "inconclusive"
    return "confirmed"


def evaluate(run: Run, e: Expectation, index: int) -> ExpectationResult:
    """Measure one expectation over its windows and give its verdict."""
    if e.window == "baseline":
        stages: list[str | None] = [None]
    elif e.stage:
        stages = [e.stage]
    else:
        kind = "recovery" if e.window == "after-rollback" else e.window
        stages = [w.stage for w in run.windows(kind)] or [None]
    parts = [_one(run, e, s) for s in stages]
    verdict = combine([p.verdict for p in parts])
    decisive = [p for p in parts if p.verdict == verdict] or parts
    reason = "; ".join(f"{p.stage or p.window}: {p.reason}" for p in decisive)
    return ExpectationResult(index=index, text=e.describe(), observable=e.observable, verdict=verdict,
                             reason=reason, stages=parts)


def evaluate_all(run: Run) -> list[ExpectationResult]:
    """Every expectation of the run's hypothesis, in blueprint order."""
    if run.campaign is None:
        return []
    return [evaluate(run, e, i) for i, e in enumerate(run.campaign.hypothesis.expectations)]


def overall(run: Run, results: list[ExpectationResult]) -> Overall:
    """The hypothesis verdict over all expectations, with the reason in words."""
    if not results:
        return Overall(verdict="inconclusive", reason="the record holds no readable hypothesis")
    verdict = combine([r.verdict for r in results])
    names = [f"'{r.text}'" for r in results if r.verdict == verdict]
    if verdict == "confirmed":
        reason = f"all {len(results)} expectations held in every window"
    elif verdict == "refuted":
        reason = f"{len(names)} of {len(results)} expectations did not hold: {', '.join(names)}"
    else:
        reason = f"{len(names)} of {len(results)} expectations could not be decided: {', '.join(names)}"
    aborted = [s.name for s in run.record.stages if s.status == "aborted"]
    if aborted:
        reason += f"; aborted stages: {', '.join(aborted)}"
    return Overall(verdict=verdict, reason=reason)
