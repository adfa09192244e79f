"""The error-budget gate: an SLO whose budget must have enough left before a campaign may hurt the target.

The SLI is a PromQL expression of the good-events ratio (0 to 1) at an instant; over the SLO's ``window`` its mean
is read with a subquery (``avg_over_time((SLI)[window:step])``). The budget is ``1 - objective``; the share of it
consumed is ``(1 - mean SLI) / (1 - objective)``, and what remains is one minus that (negative once overspent). A
run is refused before any injection while less than ``min_remaining`` remains; after the run, the share of the
window's budget the run itself consumed is ``(1 - mean SLI over the run) * run seconds / (window seconds * budget)``.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from blueprints.common import Duration, Model


def promql_duration(seconds: float) -> str:
    """A PromQL range duration of whole seconds (at least 1 s)."""
    return f"{max(1, int(seconds))}s"


class ErrorBudget(Model):
    """An SLO whose error budget must have at least ``min_remaining`` left before anything is injected."""

    sli: str = Field(min_length=1, description=(
        "PromQL of the good-events ratio (0 to 1) at an instant, e.g. "
        "sum(rate(requests_total{code!~\"5..\"}[5m])) / sum(rate(requests_total[5m]))"))
    objective: float = Field(gt=0, lt=1, description="the SLO's target for the SLI, e.g. 0.999")
    window: Duration = Field(default=timedelta(days=30), description="the SLO's window, e.g. 30d")
    min_remaining: float = Field(default=0.25, ge=0, le=1, description=(
        "the share of the window's error budget that must remain for the run to start (0.25: a quarter)"))
    step: Duration = Field(default=timedelta(minutes=1), description="the subquery's resolution over the window")

    @model_validator(mode="after")
    def _step_fits(self) -> ErrorBudget:
        if self.step.total_seconds() < 1:
            raise ValueError("step must be at least 1s")
        if self.window <= self.step:
            raise ValueError(f"window ({self.window}) must be longer than step ({self.step})")
        return self

    @property
    def budget(self) -> float:
        """The error budget: the share of events allowed to be bad (1 - objective)."""
        return 1.0 - self.objective

    def window_query(self) -> str:
        """The SLI's mean over the SLO window."""
        return (f"avg_over_time(({self.sli})[{promql_duration(self.window.total_seconds())}:"
                f"{promql_duration(self.step.total_seconds())}])")

    def run_query(self, run_seconds: float) -> str:
        """The SLI's mean over the last ``run_seconds`` (twenty points at least)."""
        step = min(self.step.total_seconds(), max(1.0, run_seconds / 20))
        return f"avg_over_time(({self.sli})[{promql_duration(run_seconds)}:{promql_duration(step)}])"

    def remaining(self, mean_sli: float) -> float:
        """The share of the budget left when the SLI's mean over the window is ``mean_sli`` (below 0: overspent)."""
        return 1.0 - (1.0 - mean_sli) / self.budget

    def consumed_by(self, mean_sli: float, run_seconds: float) -> float:
        """The share of the window's budget that ``run_seconds`` at a mean SLI of ``mean_sli`` consumed."""
        return (1.0 - mean_sli) * run_seconds / (self.window.total_seconds() * self.budget)


class Preflight(Model):
    """What must hold before a campaign may start, beyond steady state: the error-budget gate."""

    error_budget: ErrorBudget | None = None
