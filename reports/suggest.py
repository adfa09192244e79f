"""``gameday suggest``: rank blueprints by expected information and propose the next intensity to try.

Score (higher = more worth running): never run +100; last run refuted +60 (inconclusive +30); topology changed
since the last run +40; +1 per day since the last run (at most +30); every expectation confirmed on the last N
runs on this topology −20 (a low-information run). For an expectation refuted last time, propose stepping the
fault's main intensity parameter *down* (find where the system holds); for one confirmed N times in a row, step
it *up*. Steps halve or double the parameter (direction-aware: a lower SM clock or a smaller ``every`` is more
intense), clamped to the spec's bounds; faults without an intensity knob fall back to the stage's ``observe``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from blueprints.campaign import Campaign
from reports.history import LOW_INFORMATION_RUNS, HistoryStore, flags

Direction = Literal["up", "down"]
# (attribute path inside the fault, True if a larger value is more intense, integer?, low bound, high bound)
_Knob = tuple[str, bool, bool, float, float]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IntensityProposal(_Out):
    """Try this parameter value next, and why."""

    path: str
    current: float
    proposed: float
    direction: Direction
    expectation: str
    why: str


class Suggestion(_Out):
    """One blueprint's rank: score, reasons in words, and proposed intensities."""

    name: str
    campaign: str
    score: float
    reasons: list[str]
    proposals: list[IntensityProposal] = []
    last_run: datetime | None = None


def knobs(fault: Any) -> list[_Knob]:
    """The main intensity parameter(s) of one fault spec, most important first."""
    kind = fault.kind
    if kind == "control-plane-overload":
        return [("rate", True, False, 0.1, 100_000)] if fault.mode == "client-storm" else \
            [("per_pod_rate", True, False, 0.1, 1000)]
    if kind == "coredns-outage" and fault.mode == "corefile":
        return [("corefile.every", False, True, 1, 1_000_000)]
    if kind in ("pod-kill", "node-cordon") and fault.selector.mode in ("fixed", "fixed-percent"):
        return [("selector.value", True, fault.selector.mode == "fixed", 1, 100 if fault.selector.mode != "fixed"
                 else 1_000_000)]
    if kind == "gpu-xid":
        return [("count", True, True, 1, 100)]
    if kind == "gpu-degrade":
        out: list[_Knob] = []
        if fault.sm_clock_mhz is not None:
            out.append(("sm_clock_mhz", False, True, 100, 5000))
        if fault.power_limit_w is not None:
            out.append(("power_limit_w", False, True, 50, 2000))
        if fault.hold_memory_gib is not None:
            out.append(("hold_memory_gib", True, False, 0.5, 1024))
        return out
    return []


def _get(obj: Any, path: str) -> float:
    for part in path.split("."):
        obj = getattr(obj, part)
    return float(obj)


def _step(value: float, more: bool, larger_is_more: bool, integer: bool, lo: float, hi: float) -> float:
    up = more == larger_is_more
    new = value * 2 if up else value / 2
    if integer:
        new = float(max(int(value) + 1, round(new)) if up else min(int(value) - 1, round(new)))
    return min(hi, max(lo, new))


def propose(campaign: Campaign, stage: str | None, direction: Direction, expectation: str, why: str
            ) -> IntensityProposal | None:
    """Step the first fault of ``stage`` (default: the last stage up, the first down) in ``direction``."""
    names = [s.name for s in campaign.stages]
    si = names.index(stage) if stage in names else (len(names) - 1 if direction == "up" else 0)
    st = campaign.stages[si]
    for fi, fault in enumerate(st.faults):
        for attr, larger_is_more, integer, lo, hi in knobs(fault):
            current = _get(fault, attr)
            new = _step(current, direction == "up", larger_is_more, integer, lo, hi)
            if new != current:
                return IntensityProposal(path=f"stages[{si}].faults[{fi}].{attr}", current=current, proposed=new,
                                         direction=direction, expectation=expectation, why=why)
    seconds = st.observe.total_seconds()
    new = seconds * 2 if direction == "up" else max(1.0, seconds / 2)
    if new == seconds:
        return None
    return IntensityProposal(path=f"stages[{si}].observe", current=seconds, proposed=new, direction=direction,
                             expectation=expectation, why=why + " (no intensity parameter: observe longer/shorter)")


def _one(name: str, c: Campaign, history: HistoryStore, fingerprint: str | None, now: datetime) -> Suggestion:
    runs = history.runs(c.name)
    score, reasons, proposals = 0.0, [], []
    if not runs:
        return Suggestion(name=name, campaign=c.name, score=100.0, reasons=["never run"])
    last = runs[0]
    if last.verdict == "refuted":
        score += 60
        reasons.append(f"last run {last.run_id} refuted the hypothesis")
    elif last.verdict == "inconclusive":
        score += 30
        reasons.append(f"last run {last.run_id} was inconclusive")
    if fingerprint and last.fingerprint != fingerprint:
        score += 40
        reasons.append(f"topology changed since the last run ({last.fingerprint or '?'} → {fingerprint})")
    days = max(0.0, (now - last.started_at) / timedelta(days=1))
    score += min(30.0, days)
    if days >= 7:
        reasons.append(f"long since last run: {days:.0f} days")
    fp = fingerprint if fingerprint is not None else last.fingerprint
    low = []
    for e in c.hypothesis.expectations:
        text = e.describe()
        past = history.expectation_history(c.name, text)
        if past and past[0].verdict == "refuted":
            stage = past[0].refuted_stages[0] if past[0].refuted_stages else e.stage
            p = propose(c, stage, "down", text, f"refuted in {past[0].run_id}: find the intensity it withstands")
            proposals += [p] if p else []
        f = flags(past, fp)
        if f.low_information:
            low.append(text)
            p = propose(c, e.stage, "up", text, f"confirmed on the last {LOW_INFORMATION_RUNS} runs: push harder")
            proposals += [p] if p else []
    if low and len(low) == len(c.hypothesis.expectations):
        score -= 20
        reasons.append(f"low information: every expectation confirmed on the last {LOW_INFORMATION_RUNS} runs")
    unique = {p.path: p for p in reversed(proposals)}
    return Suggestion(name=name, campaign=c.name, score=round(score, 2), reasons=reasons or ["recently run, nothing new"],
                      proposals=list(reversed(unique.values())), last_run=last.started_at)


def rank(blueprints: list[tuple[str, Campaign]], history: HistoryStore, fingerprint: str | None,
         now: datetime) -> list[Suggestion]:
    """Blueprints ordered by expected information (best first), each with reasons and proposed intensities."""
    out = [_one(name, c, history, fingerprint, now) for name, c in blueprints]
    return sorted(out, key=lambda s: (-s.score, s.name))
