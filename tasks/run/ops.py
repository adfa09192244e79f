"""What the campaign runner sequences, and how what is in place is undone.

:class:`Ops` bundles the operations (plan, record, inject, verify, rollback, settle, renew, evaluate):
``flows/campaign.py`` hands the runner Prefect task wrappers of them (``tasks/steps.py``); tests and
``gameday plan`` hand in the plain functions (``tasks/run/connect.py``). An approver decides
approval-required stages.

Rollback (:func:`rollback`) undoes :class:`Active` injections in reverse order, settles each ledger entry,
and never stops half-way: every item is tried even when an earlier one fails; an interruption
(KeyboardInterrupt, Prefect's TerminationSignal) is re-raised only after the remaining rollbacks ran. A
rollback that fails is recorded and left ``rollback-failed`` in the ledger for ``gameday reconcile``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from blueprints.campaign import Stage
from blueprints.faults import Fault
from blueprints.record import Approval, FaultOutcome
from tasks.faults.base import Evidence, FaultContext, Injection
from tasks.run.guardrails import Evaluate
from tasks.run.recorder import Recorder, now

Approver = Callable[[Stage], Approval]
"""Decides an approval-required stage: approve, skip, abort or timeout."""
StageStatus = Literal["completed", "aborted", "skipped", "failed"]
"""How a stage ended."""

@dataclass
class Ops:
    """The operations the runner sequences: plain functions, or their Prefect task wrappers."""

    plan: Callable[[Fault, FaultContext, str, str, str], Injection]
    record: Callable[[Injection], None]
    inject: Callable[[Injection, FaultContext], Injection]
    verify: Callable[[Injection, FaultContext], Evidence]
    rollback: Callable[[Injection, FaultContext], None]
    settle: Callable[[Injection, str, str], None]
    """Move the ledger entry to applied | rolled-back | rollback-failed (with an error)."""
    renew: Callable[[Injection, FaultContext], None]
    evaluate: Evaluate
    plain: Ops | None = None
    """The un-orchestrated operations, used for rollback while unwinding from a cancellation."""

    def for_unwinding(self, unwinding: bool) -> Ops:
        """The operations to use: the plain ones while unwinding from a cancellation (when there are any)."""
        return self.plain if unwinding and self.plain is not None else self


def auto_approve(stage: Stage) -> Approval:
    """Approve every stage without asking (recorded as 'auto')."""
    return Approval(decision="auto", by="gameday --yes", comment="", at=now())


@dataclass
class Active:
    """An injection registered as active (its undo is owed) and the outcome recorded for it."""

    injection: Injection
    outcome: FaultOutcome


def settle(ops: Ops, recorder: Recorder, inj: Injection, state: str, error: str) -> None:
    """Move the injection's ledger entry to ``state``; a failure is recorded, not raised."""
    try:
        ops.settle(inj, state, error)
    except Exception as e:  # noqa: BLE001 - the ledger keeps the entry; reconcile settles it
        recorder.event("error", f"ledger update failed: {e}", stage=inj.stage, fault=inj.fault_id)


def rollback(
    items: list[Active], active: list[Active], ops: Ops, ctx: FaultContext, recorder: Recorder, stage: str
) -> None:
    """Roll back ``items`` in reverse order, dropping each from ``active``; each is tried whatever fails."""
    pending: BaseException | None = None
    for item in reversed(items):
        inj, fo = item.injection, item.outcome
        try:
            ops.rollback(inj, ctx)
            fo.rollback_ok, fo.rolled_back_at = True, now()
            recorder.event("rollback", inj.summary, stage=stage, fault=inj.fault_id)
            settle(ops, recorder, inj, "rolled-back", "")
        except Exception as e:  # noqa: BLE001 - recorded; reconcile retries from the ledger
            fo.rollback_ok, fo.rollback_error = False, f"{type(e).__name__}: {e}"
            recorder.event("rollback-failed", fo.rollback_error, stage=stage, fault=inj.fault_id)
            recorder.rollback_problem(f"{stage}/{inj.fault_id}: {fo.rollback_error}")
            settle(ops, recorder, inj, "rollback-failed", fo.rollback_error)
        except BaseException as e:  # noqa: BLE001 - finish the other rollbacks first, then re-raise
            pending = pending or e
            fo.rollback_ok, fo.rollback_error = False, f"interrupted: {type(e).__name__}"
        if item in active:
            active.remove(item)
    if pending is not None:
        raise pending
