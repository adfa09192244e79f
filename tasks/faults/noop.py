"""noop: changes nothing, but goes through ledger, verify and rollback like any fault.

Blast radius: none. Undo: nothing to undo. Used to rehearse campaigns and to measure runner overhead.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel

from blueprints.faults import Noop
from tasks.faults.base import Change, Evidence, FaultContext, Injection, Undo
from tasks.faults.selection import now


class NoopUndo(Undo):
    """nothing to undo"""


class NoopFault:
    """Behaviour of the noop kind."""

    kind: ClassVar[str] = "noop"
    blast_radius: ClassVar[str] = "none"
    undo: ClassVar[type[BaseModel]] = NoopUndo
    leased: ClassVar[bool] = False

    def plan(self, spec: Noop, ctx: FaultContext, *, run_id: str, stage: str, fault_id: str) -> Injection:
        """A plan that touches nothing (and needs no cluster)."""
        return Injection(run_id=run_id, stage=stage, fault_id=fault_id, kind=self.kind,
                         spec=spec.model_dump(mode="json"), summary="no-op",
                         changes=[Change(action="local", object="nothing", undo="nothing")],
                         undo=NoopUndo().model_dump(mode="json"), cluster_scoped_ledger=False, planned_at=now())

    def inject(self, injection: Injection, ctx: FaultContext) -> Injection:
        """Do nothing."""
        return injection

    def verify(self, injection: Injection, ctx: FaultContext) -> Evidence:
        """Trivially landed."""
        return Evidence(landed=True, summary="no-op: nothing to verify")

    def rollback(self, injection: Injection, ctx: FaultContext) -> None:
        """Nothing to undo."""

    def renew(self, injection: Injection, ctx: FaultContext) -> None:
        """Nothing to renew."""
