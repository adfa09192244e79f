"""Undoing injections: roll back in reverse order, settle each ledger entry, never stop half-way.

Every item is tried even when an earlier one fails; an interruption (KeyboardInterrupt, Prefect's
TerminationSignal) is re-raised only after the remaining rollbacks ran. A rollback that fails is recorded
and left ``rollback-failed`` in the ledger for ``gameday reconcile`` to retry.
"""

from __future__ import annotations

from dataclasses import dataclass

from blueprints.record import FaultOutcome
from tasks.faults.base import FaultContext, Injection
from tasks.runner_ops import Ops
from tasks.runner_record import Recorder, now


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
