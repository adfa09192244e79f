"""Refutability: warnings about expectations that one good sample, or no data at all, would satisfy.

A verdict is only worth what could have said otherwise. Each warning names its path
(``hypothesis.expectations[i]``) and says in one sentence why that expectation is weak:

- ``max(x) >= t`` / ``min(x) <= t`` (and ``>``/``<``) over a fault, recovery or after-rollback window: one good
  sample satisfies it;
- a comparison that the observable's range makes always true: a count, rate or increase ``>= 0`` (or above
  any negative number), a share of one metric ``<= 1`` (or ``>= 0``);
- a statistic other than ``delta``/``rate`` over a cumulative counter read as it is: a lifetime total passes on
  a lab that is not fresh;
- ``delta``/``rate`` over a query that is not a counter;
- an observable with a constant fallback (``or vector(0)``): a missing metric reads as that constant;
- a ratio with a clamped denominator (``x / clamp_min(y, 1e-9)``): no traffic reads as a ratio of 0.

``gameday validate`` prints them (``--strict`` makes them errors); the run's preflight records them and the
report shows them beside the verdict. Guardrails are not expectations and are not checked here.
"""

from __future__ import annotations

from blueprints.campaign import Campaign, Observable
from blueprints.hypothesis import Expectation
from blueprints.promql import QueryShape, query_shape

_LENIENT = {"max": (">=", ">"), "min": ("<=", "<")}


def _always_true(e: Expectation, shape: QueryShape) -> str | None:
    if e.relative_to_baseline or e.statistic in ("p99_amplification", "slo_violations_per_min"):
        return None
    lower_bound = shape.non_negative or e.statistic in ("delta", "rate") and shape.bare_counter is not None
    if lower_bound and ((e.op == ">=" and e.threshold <= 0) or (e.op == ">" and e.threshold < 0)):
        return f"{e.observable} is a count, rate or increase and never below 0, so '{e.op} {e.threshold:g}' " \
               "always holds"
    if shape.ratio_of_one_metric and e.statistic not in ("delta", "rate") and (
            (e.op == "<=" and e.threshold >= 1) or (e.op == "<" and e.threshold > 1)):
        return f"{e.observable} is a share of one metric and never above 1, so '{e.op} {e.threshold:g}' " \
               "always holds"
    return None


def expectation_warnings(e: Expectation, obs: Observable | None, path: str) -> list[str]:
    """Why one expectation is weak (empty when it could be refuted), each line starting with ``path``."""
    out: list[str] = []
    if e.statistic in _LENIENT and e.op in _LENIENT[e.statistic] and e.window != "baseline":
        out.append(f"{path}: '{e.describe()}' holds if one sample in the window is good; use mean, a "
                   f"percentile, or every sample ('{e.observable} {e.op} {e.threshold:g} ...')")
    if obs is None:
        return out
    try:
        shape = query_shape(obs.query)
    except ValueError:
        return out
    if shape.evidence is None:
        out.append(f"{path}: observable {obs.name!r} reads no metric, so nothing the fault does can change it")
        return out
    why = _always_true(e, shape)
    if why:
        out.append(f"{path}: {why}")
    if shape.bare_counter and e.statistic not in ("delta", "rate"):
        out.append(f"{path}: {obs.name!r} is the cumulative counter {shape.bare_counter} read as a lifetime "
                   f"total; write delta({e.observable}) or rate({e.observable}) to count only this window")
    if e.statistic in ("delta", "rate") and shape.bare_counter is None:
        out.append(f"{path}: {e.statistic}({e.observable}) needs a cumulative counter, but {obs.name!r} is not "
                   "one read as it is (it is already a rate, ratio or gauge)")
    if shape.constant_fallback:
        out.append(f"{path}: observable {obs.name!r} has a constant fallback ('or vector(...)'): a missing "
                   "metric reads as that constant instead of no data")
    if shape.clamped_denominator:
        out.append(f"{path}: observable {obs.name!r} divides by clamp_min(..., tiny): an instant with no "
                   "traffic reads as a ratio of 0 instead of no sample; divide by the plain sum")
    return out


def weak_expectations(c: Campaign) -> list[str]:
    """Every refutability warning of a campaign's hypothesis, in blueprint order, each with its path."""
    observables = {o.name: o for o in c.observables}
    out: list[str] = []
    for i, e in enumerate(c.hypothesis.expectations):
        out.extend(expectation_warnings(e, observables.get(e.observable), f"hypothesis.expectations[{i}]"))
    return out
