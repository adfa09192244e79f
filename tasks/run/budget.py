"""Reading an error budget from Prometheus: the gate before a run, and what the run consumed after it.

Both read the SLI's mean through the runner's probe evaluation (a ``prometheus`` probe, with its timeout), so the
gate fails closed like the rest of preflight: a query Prometheus cannot answer, or one that returns no sample,
refuses the run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, TypedDict

from blueprints.budget import ErrorBudget
from blueprints.probes import PrometheusProbe, Tolerance
from tasks.errors import ProbeError
from tasks.run.guardrails import Evaluate

QUERY_TIMEOUT = timedelta(seconds=30)
"""A month-long subquery can take a while on a big Prometheus."""


class BudgetFigures(TypedDict, total=False):
    """What the gate (``phase`` before) or the consumption (after) found, as recorded in the run's error-budget
    event: ``error`` when the SLI could not be read, the figures otherwise."""

    phase: Literal["before", "after"]
    query: str
    objective: float
    window_s: float
    min_remaining: float
    run_s: float
    """After: the run's length."""
    error: str
    mean_sli: float
    remaining: float
    """Before: the share of the window's budget left."""
    consumed: float
    """After: the share of the window's budget the run used."""


def _mean(spec: ErrorBudget, query: str, evaluate: Evaluate) -> float:
    probe = PrometheusProbe(name="error-budget", query=query, timeout=QUERY_TIMEOUT, tolerance=Tolerance(range=(0, 1)))
    verdict = evaluate(probe)
    value = verdict.value
    if isinstance(value, list):
        raise ProbeError(f"{query!r} returned {len(value)} series; the SLI must be one ratio (aggregate it)")
    if value is None:
        raise ProbeError(f"{query!r} returned no sample: the SLI has no data ({verdict.detail})")
    return float(value)


def gate(spec: ErrorBudget, evaluate: Evaluate) -> tuple[str | None, BudgetFigures]:
    """(problem or None, figures) for the budget before the run: refused while less than ``min_remaining`` is left
    or when the SLI cannot be read."""
    figures: BudgetFigures = {"phase": "before", "objective": spec.objective,
                              "window_s": spec.window.total_seconds(), "min_remaining": spec.min_remaining,
                              "query": spec.window_query()}
    try:
        mean = _mean(spec, spec.window_query(), evaluate)
    except Exception as e:  # noqa: BLE001 - an unreadable budget refuses the run (fail closed)
        figures["error"] = str(e)
        return f"error_budget could not be read: {e}", figures
    remaining = spec.remaining(mean)
    figures["mean_sli"], figures["remaining"] = mean, remaining
    if remaining < spec.min_remaining:
        return (f"error_budget: {remaining:.1%} of the {_days(spec)} budget remains (SLI {mean:.4%} against an "
                f"objective of {spec.objective:.4%}); at least {spec.min_remaining:.0%} must remain"), figures
    return None, figures


def consumption(spec: ErrorBudget, evaluate: Evaluate, run_seconds: float) -> BudgetFigures:
    """Figures for what the run consumed: the SLI's mean over the run and the share of the window's budget used."""
    query = spec.run_query(run_seconds)
    figures: BudgetFigures = {"phase": "after", "run_s": run_seconds, "query": query}
    try:
        mean = _mean(spec, query, evaluate)
    except Exception as e:  # noqa: BLE001 - reported, the run is over either way
        figures["error"] = str(e)
        return figures
    figures["mean_sli"], figures["consumed"] = mean, spec.consumed_by(mean, run_seconds)
    return figures


def _days(spec: ErrorBudget) -> str:
    seconds = spec.window.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}-{unit}"
    return f"{seconds:g}-second"
