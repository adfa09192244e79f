"""What the campaign runner sequences: the :class:`Ops` bundle, the approver type and stage statuses.

``flows/campaign.py`` hands the runner Ops whose members are Prefect task wrappers (``tasks/steps.py``);
tests and ``gameday plan`` hand in the plain functions (``tasks/runner_connect.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from blueprints.campaign import Stage
from blueprints.faults import Fault
from blueprints.record import Approval
from tasks.faults.base import Evidence, FaultContext, Injection
from tasks.runner_record import now
from tasks.runner_watch import Evaluate

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


def auto_approve(stage: Stage) -> Approval:
    """Approve every stage without asking (recorded as 'auto')."""
    return Approval(decision="auto", by="gameday --yes", comment="", at=now())
