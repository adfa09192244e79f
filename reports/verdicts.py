"""Hypothesis verdicts: each expectation measured per stage window, then combined into one overall verdict.

Semantics (see blueprints/hypothesis.py for the grammar):
- Samples of all series of the observable are pooled. Statistic ``all``: every sample must satisfy the
  comparison; the measured value shown is the worst sample. ``last``: the samples at the latest timestamp
  (the worst of them when several series). Percentiles use linear interpolation.
- ``K * baseline``: K times the same statistic over the baseline window (for ``all``: K times the baseline mean).
- Window ``fault``/``recovery``: every stage that has such a window (only ``stage`` when set); a stage-scoped
  expectation whose stage has no window is inconclusive. ``after-rollback``: every sample from the stage's
  rollback (its last fault's) + ``within`` to the end of its recovery window. ``baseline``: the baseline window.
- Evidence of observation: where the frames record when each metric the observable reads had series
  (``presence:<metric>`` rows), a sample counts only at instants when the metrics of one of the query's
  alternatives (``a or b``: a, or b; ``a / b``: both) had series; what ``or vector(0)`` returns at other
  instants is no evidence. A window left with no sample is inconclusive, naming the metrics that had no data.
- ``delta``/``rate``: per series, the counter's growth inside the window (base: the last sample before the
  window; a series first seen in a window after the baseline counts from 0; a drop is a reset from 0).
  ``p99_amplification``: window p99 / baseline p99. ``slo_violations_per_min``: stats.slo_density.
- A fault that did not verifiably land makes its stage's results inconclusive (measurements are still shown);
  baseline expectations do not depend on faults. No samples → inconclusive.
- A stage aborted by a guardrail is never confirmed: refuted when the guardrail refutes the belief
  (``Campaign.guardrail_refutes``), else inconclusive; a stage aborted for another reason is inconclusive.
- Per expectation: refuted if any stage is refuted, else inconclusive if any is, else confirmed. Overall: the same
  rule over expectations and guardrail firings (a refuting one counts as refuted, another as inconclusive);
  the reason starts with the guardrail that fired, when, and with what value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from blueprints.hypothesis import Expectation
from blueprints.promql import Evidence, query_shape
from reports.frames import F64, I64, Run, Series, ns
from reports.stats import OPS, p99_amplification, slo_density, stage_rollback

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
    missing: list[str] = []
    """Metrics the observable reads that had no series in this window."""
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


class GuardrailFiring(_Out):
    """A guardrail breach that aborted a stage: which, when, with what value, and what it means."""

    guardrail: str
    stage: str | None
    at: datetime
    value: Any = None
    reason: str
    refutes: bool

    def describe(self) -> str:
        """One line: 'guardrail X fired at T with value V and aborted stage S (reason): what it means'."""
        value = "" if self.value is None else f" with value {self.value}"
        return (f"guardrail {self.guardrail!r} fired at {self.at:%H:%M:%S} UTC{value} and aborted stage {self.stage} "
                f"({self.reason}): it {'refutes the belief' if self.refutes else 'makes the run inconclusive'}")


class Overall(_Out):
    """The hypothesis verdict, with why in words."""

    verdict: VerdictKind
    reason: str
    guardrails: list[GuardrailFiring] = []


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


@dataclass(frozen=True)
class _Evidence:
    """When an observable's samples are evidence: its query's metric alternatives and their presence."""

    alternatives: Evidence | None
    presence: dict[str, I64]
    """metric → instants (ms) with at least one series; only metrics whose presence was recorded."""

    @property
    def recorded(self) -> bool:
        return bool(self.alternatives) and all(m in self.presence for alt in self.alternatives or [] for m in alt)

    def mask(self, t: I64) -> np.ndarray:
        """Which instants ``t`` (ns) are evidence (all True when presence was not recorded)."""
        if not self.recorded or self.alternatives is None:
            return np.ones(t.shape, dtype=bool)
        ms = t // 1_000_000
        out = np.zeros(t.shape, dtype=bool)
        for alt in self.alternatives:
            ok = np.ones(t.shape, dtype=bool)
            for m in alt:
                ok &= np.isin(ms, self.presence[m])
            out |= ok
        return out

    def missing(self, start: int, end: int) -> list[str]:
        """Metrics with no series at any instant of ``[start, end)``."""
        if not self.recorded:
            return []
        lo, hi = start // 1_000_000, end // 1_000_000
        return sorted(m for alt in self.alternatives or [] for m in alt
                      if not np.any((self.presence[m] >= lo) & (self.presence[m] < hi)))


def _evidence(run: Run, observable: str) -> _Evidence:
    obs = next((o for o in run.observables() if o.name == observable), None)
    try:
        alternatives = query_shape(obs.query).evidence if obs is not None else None
    except ValueError:
        alternatives = None
    presence = {m: s.t[s.v > 0] // 1_000_000 for m, s in run.presence.items()}
    return _Evidence(alternatives, presence)


def _masked(series: list[Series], keep: Callable[[I64], np.ndarray]) -> list[Series]:
    out = []
    for s in series:
        m = keep(s.t)
        out.append(Series(s.name, s.t[m], s.v[m]))
    return out


def counter_delta(series: list[Series], start: int, end: int, born_counts: bool) -> tuple[float, int]:
    """(growth of the counters inside ``[start, end)`` summed over series, samples used); see module doc."""
    total, n = 0.0, 0
    for s in series:
        inside = (s.t >= start) & (s.t < end)
        if not inside.any():
            continue
        first = int(np.argmax(inside))
        vals = s.v[inside]
        base = float(s.v[first - 1]) if first > 0 else (0.0 if born_counts else float(vals[0]))
        seq = np.concatenate([[base], vals])
        step = np.diff(seq)
        total += float(np.where(step >= 0, step, seq[1:]).sum())
        n += int(vals.size)
    return total, n


@dataclass(frozen=True)
class _Measured:
    value: float | None
    n: int
    t: I64
    v: F64
    why: str = ""


def _measure(run: Run, e: Expectation, span: tuple[int, int], ev: _Evidence, stat: str | None = None) -> _Measured:
    """The expectation's statistic over ``span`` from evidence samples only."""
    stat = stat or e.statistic
    keep = ev.mask
    t, v = run.pooled(e.observable, *span)
    m = keep(t)
    t, v = t[m], v[m]
    empty = np.empty(0, np.float64)
    if stat in ("delta", "rate"):
        bw = run.baseline()
        born = bw is not None and span[0] >= ns(bw.end)
        total, n = counter_delta(_masked(run.series.get(e.observable, []), keep), *span, born_counts=born)
        if n == 0:
            return _Measured(None, 0, t, v)
        value = total if stat == "delta" else total / ((span[1] - span[0]) / 1e9)
        return _Measured(value, n, t, v)
    if v.size == 0:
        return _Measured(None, 0, t, v)
    if stat == "p99_amplification":
        bw = run.baseline()
        if bw is None:
            return _Measured(None, int(v.size), t, v, "no baseline window")
        bt, bv = run.pooled(e.observable, ns(bw.start), ns(bw.end))
        bv = bv[keep(bt)]
        amp = p99_amplification(v, bv if bv.size else empty)
        return _Measured(amp, int(v.size), t, v, "" if amp is not None else "baseline p99 is 0 or missing")
    if stat == "slo_violations_per_min":
        obs = next((o for o in run.observables() if o.name == e.observable), None)
        if obs is None or obs.slo is None:
            return _Measured(None, int(v.size), t, v, f"observable {e.observable} declares no slo")
        density = slo_density(_masked(run.series.get(e.observable, []), keep), *span, obs.slo)
        return _Measured(density, int(v.size), t, v)
    return _Measured(statistic(stat, t, v, e.op), int(v.size), t, v)


def _threshold(run: Run, e: Expectation, ev: _Evidence) -> tuple[float | None, str]:
    if not e.relative_to_baseline:
        return e.threshold, ""
    bw = run.baseline()
    if bw is None:
        return None, "no baseline window"
    if e.statistic == "all":
        base = _measure(run, e, (ns(bw.start), ns(bw.end)), ev, stat="mean")
    else:
        base = _measure(run, e, (ns(bw.start), ns(bw.end)), ev)
    if base.value is None:
        return None, "no baseline samples" + (f" ({base.why})" if base.why else "")
    return e.threshold * base.value, ""


def _span(run: Run, e: Expectation, stage: str | None) -> tuple[int, int] | None:
    if e.window == "baseline":
        bw = run.baseline()
        return (ns(bw.start), ns(bw.end)) if bw else None
    kind = {"after-rollback": "recovery", "fault-and-recovery": "fault"}.get(e.window, e.window)
    found = run.windows(kind, stage)
    if not found:
        return None
    start, end = ns(found[0].start), ns(found[0].end)
    if e.window == "fault-and-recovery":
        recovery = run.windows("recovery", stage)
        end = ns(recovery[0].end) if recovery else end
    if e.window == "after-rollback" and stage is not None:
        rb = stage_rollback(run, stage)
        start = (rb if rb is not None else start) + int((e.within or timedelta(0)).total_seconds() * 1e9)
    return start, end


def firings(run: Run) -> list[GuardrailFiring]:
    """Every guardrail breach that aborted a stage, with whether it refutes the belief."""
    out: list[GuardrailFiring] = []
    guardrails = {g.name: g for g in run.campaign.guardrails} if run.campaign is not None else {}
    aborted = {s.name for s in run.record.stages if s.status == "aborted"}
    for ev in run.record.events:
        if ev.kind != "guardrail-breach" or ev.stage not in aborted:
            continue
        if ev.data.get("severity", "abort") in ("warn", "pause"):  # recorded, but it did not abort the stage
            continue
        name = str(ev.data.get("guardrail") or "?")
        g = guardrails.get(name)
        refutes = bool(run.campaign is not None and g is not None and ev.data.get("evaluable", True)
                       and run.campaign.guardrail_refutes(g))
        out.append(GuardrailFiring(guardrail=name, stage=ev.stage, at=ev.at, value=ev.data.get("value"),
                                   reason=ev.message, refutes=refutes))
    return out


def _one(run: Run, e: Expectation, stage: str | None, ev: _Evidence) -> StageVerdict:
    window = e.window
    span = _span(run, e, stage)
    where = f"stage {stage}" if stage else "baseline"
    if span is None or span[1] <= span[0]:
        return StageVerdict(stage=stage, window=window, n=0, verdict="inconclusive",
                            reason=f"no {window} window in {where}" if span is None else f"{window} window is empty")
    threshold, why = _threshold(run, e, ev)
    got = _measure(run, e, span, ev)
    missing = ev.missing(*span)
    if got.value is None or threshold is None:
        if missing:
            reason = f"no data for {', '.join(missing)} in the {window} window of {where}"
        else:
            reason = why or got.why or f"no samples of {e.observable} in the {window} window of {where}"
        return StageVerdict(stage=stage, window=window, n=got.n, threshold=threshold, missing=missing,
                            verdict="inconclusive", reason=reason)
    measured = got.value
    if e.statistic == "all":
        v = got.v
        ok = np.isclose(v, threshold, rtol=1e-9, atol=1e-12) if e.op == "==" else OPS[e.op](v, threshold)
        violations: int | None = int(v.size - np.count_nonzero(ok))
        holds = violations == 0
    else:
        violations, holds = None, compare(measured, e.op, threshold)
    verdict: VerdictKind = "confirmed" if holds else "refuted"
    reason = f"{measured:.6g} {e.op} {threshold:.6g}" + ("" if holds else " does not hold")
    if violations:
        reason += f" ({violations} of {got.v.size} samples violate it)"
    outcome = next((s for s in run.record.stages if s.name == stage), None)
    if outcome is not None and e.window != "baseline":
        unverified = [f.id for f in outcome.faults if not f.verified]
        if unverified:
            verdict = "inconclusive"
            reason = f"fault {', '.join(unverified)} not verified to have landed; measured {reason}"
        if outcome.status == "aborted":
            fired = [f for f in firings(run) if f.stage == stage]
            if fired and fired[0].refutes:
                verdict = "refuted"
                reason = f"{fired[0].describe()}; measured {reason}"
            elif verdict == "confirmed":
                verdict = "inconclusive"
                cause = fired[0].describe() if fired else (outcome.reason or "no reason given")
                reason = f"stage {stage} was aborted, so it cannot confirm: {cause}; measured {reason}"
            else:
                reason += f"; stage {stage} was aborted ({outcome.reason or 'no reason given'})"
    return StageVerdict(stage=stage, window=window, n=got.n, measured=measured, threshold=threshold,
                        violations=violations, missing=missing, verdict=verdict, reason=reason)


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
        kind = {"after-rollback": "recovery", "fault-and-recovery": "fault"}.get(e.window, e.window)
        stages = [w.stage for w in run.windows(kind)] or [None]
    ev = _evidence(run, e.observable)
    parts = [_one(run, e, s, ev) for s in stages]
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
    """The hypothesis verdict over all expectations and guardrail firings, with the reason in words."""
    fired = firings(run)
    if not results:
        return Overall(verdict="inconclusive", reason="the record holds no readable hypothesis", guardrails=fired)
    kinds: list[VerdictKind] = [r.verdict for r in results]
    kinds += ["refuted" if f.refutes else "inconclusive" for f in fired]
    verdict = combine(kinds)
    names = [f"'{r.text}'" for r in results if r.verdict == verdict]
    if verdict == "confirmed":
        reason = f"all {len(results)} expectations held in every window"
    elif verdict == "refuted":
        reason = f"{len(names)} of {len(results)} expectations did not hold: {', '.join(names)}"
    else:
        reason = f"{len(names)} of {len(results)} expectations could not be decided: {', '.join(names)}"
    if fired:
        reason = "; ".join(f.describe() for f in fired) + "; " + reason
    aborted = [s.name for s in run.record.stages if s.status == "aborted"]
    if aborted:
        reason += f"; aborted stages: {', '.join(aborted)}"
    return Overall(verdict=verdict, reason=reason, guardrails=fired)
