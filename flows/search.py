"""``gameday search-limit``: bisect one blueprint parameter for the intensity at which the hypothesis breaks.

Each probe is a full campaign run (guardrails, rollback, report); its verdict is read from the report's
``results.json``. The search assumes that more intensity is never safer: it checks both ends, then halves
the interval between the highest intensity that held and the lowest that broke until it is narrower than
the resolution. A probe that is neither confirmed nor refuted (inconclusive, failed) stops the search.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from blueprints.errors import GamedayError

BREAKS = frozenset({"refuted", "aborted"})
"""Verdicts meaning the hypothesis broke at that intensity (a guardrail abort counts: it got unsafe)."""
HOLDS = frozenset({"confirmed"})


class SearchError(GamedayError):
    """A probe gave no usable verdict, or the range is malformed; the probes so far are in the message."""

    exit_code = 1


@dataclass
class Probe:
    """One run of the campaign at one intensity."""

    value: float
    verdict: str

    @property
    def broke(self) -> bool:
        """Whether the hypothesis broke at this intensity."""
        return self.verdict in BREAKS


@dataclass
class SearchResult:
    """Where the hypothesis starts to break: last value that held, first that broke, and every probe."""

    start: float
    last_safe: float | None
    first_broken: float | None
    probes: list[Probe] = field(default_factory=list)

    @property
    def margin(self) -> float | None:
        """How many times the starting intensity the system still takes (last safe / start)."""
        if self.last_safe is None or self.start == 0:
            return None
        return self.last_safe / self.start

    def summary(self) -> str:
        """One line saying where the limit is and the safety margin."""
        if self.first_broken is None:
            return f"no limit found: the hypothesis held up to {self.last_safe:g}"
        if self.last_safe is None:
            return f"already broken at the lower end ({self.first_broken:g}): no safety margin"
        margin = f"{self.margin:.2f}x the starting value {self.start:g}" if self.margin is not None else "n/a"
        return (
            f"limit between {self.last_safe:g} (held) and {self.first_broken:g} (broke); "
            f"safety margin: {margin}"
        )


def bisect_limit(
    run: Callable[[float], str],
    lo: float,
    hi: float,
    resolution: float,
    on_probe: Callable[[Probe], None] | None = None,
) -> SearchResult:
    """Find the lowest intensity in [lo, hi] at which ``run`` (value → verdict) says the hypothesis broke."""
    if not lo < hi:
        raise SearchError(f"--from ({lo:g}) must be below --to ({hi:g})")
    if resolution <= 0:
        raise SearchError("--resolution must be positive")
    result = SearchResult(start=lo, last_safe=None, first_broken=None)

    def probe(value: float) -> bool:
        p = Probe(value, run(value))
        result.probes.append(p)
        if on_probe is not None:
            on_probe(p)
        if p.verdict not in BREAKS | HOLDS:
            tried = ", ".join(f"{q.value:g}: {q.verdict}" for q in result.probes)
            raise SearchError(f"probe at {value:g} was {p.verdict!r}: cannot bisect (probes: {tried})")
        return p.broke

    if probe(lo):
        result.first_broken = lo
        return result
    result.last_safe = lo
    if not probe(hi):
        result.last_safe = hi
        return result
    result.first_broken = hi
    safe, broken = lo, hi
    integral = all(float(x).is_integer() for x in (lo, hi, resolution))  # integer parameters stay integers
    while broken - safe > resolution:
        mid = float((safe + broken) // 2) if integral else (safe + broken) / 2
        if probe(mid):
            broken = mid
        else:
            safe = mid
    result.last_safe, result.first_broken = safe, broken
    return result


def read_verdict(run_dir: Path) -> str:
    """A run's verdict: 'aborted' if a guardrail stopped it, else the report's overall verdict."""
    record = json.loads((run_dir / "record.json").read_text())
    if record.get("status") == "aborted":
        return "aborted"
    results = run_dir / "report" / "results.json"
    if not results.exists():
        return str(record.get("status") or "no report")
    return str(json.loads(results.read_text())["overall"]["verdict"])


def yaml_number(value: float) -> str:
    """A number as YAML reads it back (integers without a decimal point, no exponent for usual values)."""
    return str(int(value)) if float(value).is_integer() else repr(round(value, 6))


def campaign_runner(
    blueprint: str, param: str, target: str | None, started_by: str
) -> Callable[[float], str]:
    """A probe function: run the campaign with ``param=value`` (auto-approved) and return its verdict."""
    from flows.campaign import run_campaign
    from flows.params import CampaignParams

    def run(value: float) -> str:
        params = CampaignParams(
            blueprint=blueprint,
            target=target,
            overrides=[f"{param}={yaml_number(value)}"],
            approval="auto",
            started_by=started_by,
        )
        try:
            return read_verdict(Path(run_campaign(params)))
        except GamedayError as e:
            return f"failed ({type(e).__name__}: {e})"

    return run
