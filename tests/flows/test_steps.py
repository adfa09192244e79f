"""The Prefect steps retry a TemporaryError (after the delay it asks for) and nothing else, and every step
of a stage is a task run the server records, on a real Prefect test server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from prefect import flow

from tasks.errors import Conflict, InjectionFailed, TemporaryError
from tasks.faults.base import FaultContext, Injection
from tasks.faults.selection import now
from tasks.steps import prefect_ops, rollback_step, verify_step
from tests.conftest import poll


def _injection() -> Injection:
    return Injection(run_id="retry", stage="s", fault_id="f", kind="noop", spec={}, summary="", planned_at=now())


class Flaky:
    """A step body that raises ``errors`` in turn, then succeeds; it notes when it was called."""

    def __init__(self, *errors: Exception) -> None:
        self.errors, self.calls = list(errors), list[float]()

    def __call__(self, injection: Injection, ctx: FaultContext) -> Any:
        self.calls.append(time.monotonic())
        if self.errors:
            raise self.errors.pop(0)
        return None


@flow(name="steps-test")
def _in_a_flow(step: Any, body: Flaky) -> None:
    """Call ``step`` inside a flow run, as the campaign flow does."""
    step(body, _injection(), FaultContext(cluster=None, run_id="retry"))


def test_a_temporary_error_is_retried_after_the_delay_it_asks_for(harness: None) -> None:
    """A rollback that fails with a Conflict, then a TemporaryError asking for 2.5 s, succeeds on its third call,
    the third coming at least 2.5 s after the second."""
    body = Flaky(Conflict("the ConfigMap changed"), TemporaryError("throttled", delay=2.5))
    _in_a_flow(rollback_step, body)
    assert len(body.calls) == 3
    assert body.calls[2] - body.calls[1] >= 2.5


def test_a_permanent_error_or_a_bug_is_not_retried(harness: None) -> None:
    """A PermanentError, or an exception gameday does not know, fails the step on its first call."""
    for error in (InjectionFailed("refused"), KeyError("bug")):
        body = Flaky(error, error, error)
        with pytest.raises(type(error)):
            _in_a_flow(verify_step, body)
        assert len(body.calls) == 1, error


STAGE = """\
name: steps
owner: tests
hypothesis: {belief: none, expectations: ["x >= 0 during fault"]}
target: {cluster: lab, namespaces: [default], blast_radius: {max_pods: 0}}
observables: [{name: x, query: up}]
baseline: 0s
stages:
  - {name: only, faults: [{kind: noop, name: nothing}], observe: 0s, recovery: 0s}
"""


def test_every_step_of_a_stage_is_a_task_run_named_after_its_fault(harness: None, tmp_path: Path) -> None:
    """A one-fault stage run through the Prefect steps leaves the server one completed task run per step, each
    named after its step and fault: plan (preflight and stage), ledger, inject, applied, verify, rollback,
    rolled-back."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.runtime import flow_run

    from blueprints import parse
    from tasks.faults import REGISTRY
    from tasks.ledger import Ledger
    from tasks.run.connect import plain_ops
    from tasks.run.guardrails import ProbeVerdict
    from tasks.run.recorder import Recorder
    from tasks.run.runner import CampaignRunner

    plain = plain_ops(REGISTRY, Ledger(tmp_path, "steps"), lambda probe: ProbeVerdict(ok=True))
    runner = CampaignRunner(
        parse(STAGE), FaultContext(cluster=None, run_id="steps"), prefect_ops(plain), Recorder("steps")
    )

    @flow(name="steps-visible")
    def run() -> tuple[str, str]:
        return runner.run(), flow_run.get_id() or ""

    status, run_id = run()
    assert status == "completed"
    wanted = sorted(
        f"{step} nothing"
        for step in ("plan", "plan", "ledger", "inject", "applied", "verify", "rollback", "rolled-back")
    )

    def names() -> list[str]:
        with get_client(sync_client=True) as client:
            found = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
        return sorted(t.name for t in found if t.state is not None and t.state.is_completed())

    poll(lambda: names() == wanted, 30, f"completed task runs {wanted}")
