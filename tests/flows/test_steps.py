"""The Prefect steps retry a TemporaryError (after the delay it asks for) and nothing else, on a real Prefect
test server."""

from __future__ import annotations

import time
from typing import Any

import pytest
from prefect import flow

from tasks.errors import Conflict, InjectionFailed, TemporaryError
from tasks.faults.base import FaultContext, Injection
from tasks.faults.selection import now
from tasks.steps import rollback_step, verify_step


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
