"""The error-budget gate against a real Prometheus: a burned or unreadable budget refuses the run before any
injection, a healthy one lets it run and records what it consumed; bad budgets are refused at validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from blueprints import parse
from blueprints.errors import BlueprintError
from tasks.errors import PreflightFailed
from tasks.faults.base import FaultContext
from tasks.probes import ProbeContext
from tasks.run.connect import plain_ops, probe_evaluator
from tasks.run.recorder import Recorder
from tasks.run.runner import CampaignRunner
from tests.conftest import poll
from tests.flows.conftest import FileFault, ListLedger

BLUEPRINT = """
name: budget-test
owner: tests
hypothesis: {{belief: the value holds, expectations: ["value >= 1 during fault"]}}
target: {{cluster: lab, namespaces: [default], blast_radius: {{max_pods: 1}}}}
observables: [{{name: value, query: 'max(gameday_test_value)'}}]
preflight:
  error_budget: {{sli: '{sli}', objective: {objective}, window: 1h, min_remaining: {min_remaining}, step: 1s}}
baseline: 0s
stages:
  - name: only
    faults: [{{kind: noop, name: a}}]
    observe: 1s
    recovery: 0s
"""
HEALTHY = 'max(gameday_test_value{pod="a"}) / 42'  # 1.0: every event good
BURNED = 'max(gameday_test_value{pod="b"}) / 42'  # 0.167: far below any objective


def run(tmp_path: Path, prometheus: str, sli: str, objective: float = 0.99,
        min_remaining: float = 0.25) -> tuple[CampaignRunner, ListLedger, Recorder]:
    """A runner over FileFault markers whose blueprint gates on ``sli``, evaluated against the session Prometheus."""
    campaign = parse(BLUEPRINT.format(sli=sli, objective=objective, min_remaining=min_remaining))
    ledger = ListLedger()
    ops = plain_ops({"noop": FileFault(tmp_path)}, ledger, probe_evaluator(ProbeContext(prometheus_url=prometheus)))
    recorder = Recorder("r1")
    return CampaignRunner(campaign, FaultContext(cluster=None, run_id="r1"), ops, recorder), ledger, recorder


def await_window_data(prometheus: str, sli: str) -> None:
    """Wait until the SLI's window subquery has a point (its 1 s steps can all predate the first scrapes)."""
    from blueprints.budget import ErrorBudget
    from tasks.probes.prometheus import instant

    query = ErrorBudget(sli=sli, objective=0.5, window="1h", step="1s").window_query()  # type: ignore[arg-type]
    poll(lambda: instant(prometheus, query, 5), 30, f"data for {query}")


def budget_events(recorder: Recorder) -> list[Any]:
    """The run's error-budget events."""
    return [e for e in recorder.events if e.kind == "error-budget"]


@pytest.mark.parametrize(("sli", "said"), [
    (BURNED, "-8233.3% of the 1-hour budget remains (SLI 16.6667% against an objective of 99.0000%)"),
    ("max(gameday_no_such_metric)", "returned no sample"),
    ("gameday_test_value / 42", "returned 2 series"),
])
def test_a_burned_or_unreadable_budget_refuses_the_run_before_any_injection(
        tmp_path: Path, prometheus: str, sli: str, said: str) -> None:
    """A budget overspent (SLI 16.7 % against 99 %), an SLI with no data, or one that is not a single ratio:
    preflight fails with the figures, and nothing is ledgered or injected."""
    await_window_data(prometheus, HEALTHY)
    runner, ledger, recorder = run(tmp_path, prometheus, sli)
    with pytest.raises(PreflightFailed, match="error_budget") as failed:
        runner.run()
    assert said in str(failed.value), str(failed.value)
    assert ledger.calls == [] and list(tmp_path.iterdir()) == []
    assert [e.data["phase"] for e in budget_events(recorder)] == ["before"]


def test_a_healthy_budget_lets_the_run_start_and_records_what_it_consumed(tmp_path: Path, prometheus: str) -> None:
    """With all of the budget left the run completes; the record says what remained before and what the run used
    (an SLI of 0.9 against an objective of 0.5: a tenth of events bad, so 0.2 of the budget per second of window)."""
    sli = f"{HEALTHY} * 0.9"
    await_window_data(prometheus, sli)
    runner, _, recorder = run(tmp_path, prometheus, sli, objective=0.5, min_remaining=0.5)
    assert runner.run() == "completed"
    before, after = budget_events(recorder)
    assert before.data["phase"] == "before" and before.data["remaining"] == pytest.approx(0.8)
    assert after.data["phase"] == "after" and after.data["mean_sli"] == pytest.approx(0.9)
    expected = (1 - 0.9) * after.data["run_s"] / (3600 * 0.5)
    assert after.data["consumed"] == pytest.approx(expected) and after.data["consumed"] > 0
    assert "the run consumed" in after.message


def test_budgets_that_cannot_work_are_refused_at_validation() -> None:
    """An objective of 1 (no budget), a window no longer than its step, or SLI PromQL that does not parse: each is a
    problem at its path under preflight.error_budget."""
    for sli, objective, field in [(HEALTHY, 1.0, "objective"), ("sum(rate(x[5m])", 0.99, "sli")]:
        with pytest.raises(BlueprintError) as bad:
            parse(BLUEPRINT.format(sli=sli, objective=objective, min_remaining=0.25))
        assert any(f"preflight.error_budget.{field}" in p for p in bad.value.problems), bad.value.problems
    text = BLUEPRINT.format(sli=HEALTHY, objective=0.99, min_remaining=0.25).replace("window: 1h", "window: 1s")
    with pytest.raises(BlueprintError, match="window"):
        parse(text)
