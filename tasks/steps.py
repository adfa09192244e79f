"""The only Prefect ``@task`` definitions: thin wrappers over the plain runner operations.

Each task calls the plain function it is handed, so the Prefect UI shows plan / ledger / inject / verify /
rollback as task runs while the logic stays testable without Prefect. Results are not cached or persisted
(every call must really happen). Guardrail evaluation and lease renewal stay plain: they run on the
watcher thread, many times a stage. When a run is unwinding from a cancellation the runner rolls back
through the plain functions (``Ops.plain``), not through Prefect.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict, TypeVar

from prefect import Task, task
from prefect.cache_policies import NO_CACHE, CachePolicy
from prefect.utilities.annotations import quote

from blueprints.faults import Fault
from tasks.errors import Conflict, TemporaryError
from tasks.faults.base import Evidence, FaultContext, Injection
from tasks.run.ops import Ops


class _Options(TypedDict):
    """What every step tells ``@task``: results are neither cached nor persisted."""

    cache_policy: CachePolicy
    persist_result: bool


class _Retries(TypedDict):
    """How a step that may succeed on retry is retried."""

    retries: int
    retry_delay_seconds: float
    retry_condition_fn: Callable[[Any, Any, Any], bool]


_OPTS: _Options = {"cache_policy": NO_CACHE, "persist_result": False}
RETRY_DELAY_S = 1.0
"""Prefect's own pause before a retry; a TemporaryError asking for longer gets the rest (at most MAX_DELAY_S)."""
MAX_DELAY_S = 30.0
R = TypeVar("R")


def only_temporary(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry condition for the steps: retry a step that failed with a :class:`TemporaryError` (the API
    server throttling or away, an agent unreachable), after the delay it asked for, or with a :class:`Conflict`
    (the object changed between read and write: the step reads it again); any other PermanentError, or an
    exception gameday does not know, fails the step at once."""
    error = state.result(raise_on_failure=False)
    if isinstance(error, Conflict):
        return True
    if not isinstance(error, TemporaryError):
        return False
    time.sleep(min(max(error.delay - RETRY_DELAY_S, 0.0), MAX_DELAY_S))
    return True


_RETRIED: _Retries = {"retries": 2, "retry_delay_seconds": RETRY_DELAY_S, "retry_condition_fn": only_temporary}


@task(name="plan", task_run_name="plan {fault_id}", **_OPTS)
def plan_step(
    fn: Callable[..., Injection], spec: Fault, ctx: FaultContext, run_id: str, stage: str, fault_id: str
) -> Injection:
    """Plan one fault (reads only)."""
    return fn(spec, ctx, run_id, stage, fault_id)


@task(name="ledger", task_run_name="ledger {injection.fault_id}", **_OPTS)
def record_step(fn: Callable[[Injection], None], injection: Injection) -> None:
    """Write the injection to the ledger before it is applied."""
    fn(injection)


@task(name="inject", task_run_name="inject {injection.fault_id}", **_OPTS)
def inject_step(fn: Callable[..., Injection], injection: Injection, ctx: FaultContext) -> Injection:
    """Apply one fault."""
    return fn(injection, ctx)


@task(name="verify", task_run_name="verify {injection.fault_id}", **_RETRIED, **_OPTS)
def verify_step(fn: Callable[..., Evidence], injection: Injection, ctx: FaultContext) -> Evidence:
    """Prove the fault landed (retried on a TemporaryError)."""
    return fn(injection, ctx)


@task(name="rollback", task_run_name="rollback {injection.fault_id}", **_RETRIED, **_OPTS)
def rollback_step(fn: Callable[..., None], injection: Injection, ctx: FaultContext) -> None:
    """Undo one fault (idempotent, so retrying a TemporaryError is safe; a rollback that still fails stays
    rollback-failed in the ledger for the janitor and ``gameday reconcile``)."""
    fn(injection, ctx)


@task(name="ledger-state", task_run_name="{state} {injection.fault_id}", **_OPTS)
def settle_step(fn: Callable[..., None], injection: Injection, state: str, error: str) -> None:
    """Move the ledger entry to applied, rolled-back or rollback-failed."""
    fn(injection, state, error)


@task(name="fetch-frames", **_OPTS)
def fetch_frames_step(prom_url: str, observables: list[Any], start: Any, end: Any, step: float) -> Any:
    """Range-query every observable over the whole run (a long-form DataFrame)."""
    from tasks.probes.metrics import fetch_frames

    return fetch_frames(prom_url, observables, start, end, step)


@task(name="build-report", **_OPTS)
def build_report_step(fn: Callable[[Path], Any], run_dir: Path) -> Any:
    """Turn the run's record and frames into HTML, JUnit and a Markdown summary (``fn`` is reports.build)."""
    return fn(run_dir)


def _run(step: Task[..., R], *args: Any) -> R:
    """Call ``step`` with every argument quoted: Prefect then does not walk the models, callables and contexts
    it is handed looking for upstream futures (there are none: a step gets plain values), about a sixth of
    the runner's CPU per step. The task run, its name (formatted from the unquoted values) and its states are
    the same."""
    return step(*(quote(a) for a in args))


def prefect_ops(plain: Ops) -> Ops:
    """The same operations, each run as a Prefect task (call inside a flow)."""
    return Ops(
        plan=lambda spec, ctx, run_id, stage, fid: _run(plan_step, plain.plan, spec, ctx, run_id, stage, fid),
        record=lambda inj: _run(record_step, plain.record, inj),
        inject=lambda inj, ctx: _run(inject_step, plain.inject, inj, ctx),
        verify=lambda inj, ctx: _run(verify_step, plain.verify, inj, ctx),
        rollback=lambda inj, ctx: _run(rollback_step, plain.rollback, inj, ctx),
        settle=lambda inj, state, err: _run(settle_step, plain.settle, inj, state, err),
        renew=plain.renew,
        evaluate=plain.evaluate,
        plain=plain,
    )
