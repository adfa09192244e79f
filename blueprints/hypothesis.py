"""The hypothesis: a belief in words plus machine-checkable expectations over observables.

An expectation is written as one line, e.g.::

    dns_success_ratio >= 0.999 during fault
    p99(api_latency) <= 1.5 * baseline within 120s after rollback
    mean(gateway_errors) <= 0.5 during fault in stage dns-block

Grammar: ``[STAT(]OBSERVABLE[)] OP THRESHOLD WINDOW [in stage NAME]`` where STAT is one of
mean, min, max, median, p50, p90, p95, p99, last (without one, *every* sample must satisfy it), or:

- ``delta(x)``: how much a cumulative counter grew inside the window (resets counted as from 0; a series
  first seen inside a window after the baseline counts from 0), summed over series; ``rate(x)`` is that
  delta per second of the window. What happened before the window never counts.
- ``p99_amplification(x)``: p99 over the window / p99 over the baseline.
- ``slo_violations_per_min(x)``: instants at which a series of x violates the observable's ``slo``, per
  minute of the window (the observable must declare an ``slo``).


OP one of <=, <, >=, >, ==, THRESHOLD a number or ``K * baseline`` (K times the same statistic
over the baseline window), and WINDOW ``during fault|baseline|recovery|fault-and-recovery`` (the last: from
the stage's fault window's start to its recovery window's end, for what may land in either) or ``within
DURATION after rollback`` (every sample from rollback + DURATION to the end of the recovery window).
Verdicts are computed in ``reports/``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, model_validator

from blueprints.common import Duration, Model, parse_duration

Statistic = Literal[
    "all", "mean", "min", "max", "median", "p50", "p90", "p95", "p99", "last", "delta", "rate",
    "p99_amplification", "slo_violations_per_min",
]
RELATIVE_STATS = frozenset({"p99_amplification"})
"""Statistics that are already relative to the baseline."""
Comparator = Literal["<=", "<", ">=", ">", "=="]

_EXPR = re.compile(
    r"""^\s*(?:(?P<stat>p99_amplification|slo_violations_per_min|mean|min|max|median|p50|p90|p95|p99|last|delta|rate)\(\s*(?P<obs1>[A-Za-z_][\w]*)\s*\)|(?P<obs2>[A-Za-z_][\w]*))
        \s*(?P<op><=|>=|==|<|>)\s*
        (?:(?P<k>\d+(?:\.\d+)?)\s*\*\s*baseline|(?P<num>-?\d+(?:\.\d+)?(?:e-?\d+)?))
        \s+(?:during\s+(?P<during>fault-and-recovery|fault|baseline|recovery)|within\s+(?P<within>\S+)\s+after\s+rollback)
        (?:\s+in\s+stage\s+(?P<stage>[\w.-]+))?\s*$""",
    re.VERBOSE,
)


class Expectation(Model):
    """One machine-checkable expectation (see the module docstring for the one-line form)."""

    text: str = ""
    observable: str
    statistic: Statistic = "all"
    op: Comparator
    threshold: float
    relative_to_baseline: bool = False
    window: Literal["fault", "baseline", "recovery", "after-rollback", "fault-and-recovery"]
    within: Duration | None = None
    stage: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_line(cls, data: Any) -> Any:
        if isinstance(data, str):
            return parse_expectation(data)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Expectation:
        if (self.window == "after-rollback") != (self.within is not None):
            raise ValueError("'within' goes with the after-rollback window, and only with it")
        if self.relative_to_baseline and self.window == "baseline":
            raise ValueError("an expectation over the baseline cannot be relative to the baseline")
        if self.statistic in RELATIVE_STATS and (self.relative_to_baseline or self.window == "baseline"):
            raise ValueError(f"{self.statistic} is already relative to the baseline: compare it with a number, "
                             "over a fault, recovery or after-rollback window")
        return self

    def describe(self) -> str:
        """The expectation in its one-line form."""
        if self.text:
            return self.text
        lhs = self.observable if self.statistic == "all" else f"{self.statistic}({self.observable})"
        rhs = f"{self.threshold:g} * baseline" if self.relative_to_baseline else f"{self.threshold:g}"
        when = (
            f"within {int(self.within.total_seconds())}s after rollback" if self.within else f"during {self.window}"
        )
        return f"{lhs} {self.op} {rhs} {when}" + (f" in stage {self.stage}" if self.stage else "")


def parse_expectation(line: str) -> dict[str, Any]:
    """Parse the one-line form into Expectation fields; raises ValueError saying what is wrong."""
    m = _EXPR.match(line)
    if not m:
        raise ValueError(
            f"cannot read expectation {line!r}; write e.g. 'p99(api_latency) <= 1.5 * baseline during fault' "
            "or 'dns_success_ratio >= 0.999 within 120s after rollback'"
        )
    g = m.groupdict()
    out: dict[str, Any] = {
        "text": line.strip(),
        "observable": g["obs1"] or g["obs2"],
        "statistic": g["stat"] or "all",
        "op": g["op"],
        "threshold": float(g["k"] if g["k"] is not None else g["num"]),
        "relative_to_baseline": g["k"] is not None,
        "stage": g["stage"],
    }
    if g["within"]:
        within = parse_duration(g["within"])
        if not isinstance(within, timedelta):
            raise ValueError(f"bad duration {g['within']!r} in expectation {line!r}")
        out.update(window="after-rollback", within=within)
    else:
        out["window"] = g["during"]
    return out


class Hypothesis(Model):
    """What we believe (in words) and how we will know (expectations)."""

    belief: str = Field(min_length=1)
    expectations: list[Expectation] = Field(min_length=1)
