"""The contract every fault behaviour implements, and the data it exchanges with the runner.

A fault is defined once: its spec is a pydantic model in ``blueprints/faults.py``; its behaviour is one
module here with a class implementing :class:`FaultBehaviour`, registered in ``tasks/faults/__init__.py``.

Order, enforced by the runner: ``plan`` (pure: reads only) → the Injection is written to the ledger →
``inject`` → ``verify`` (evidence that it landed) → … → ``rollback`` (always; idempotent; tolerates
half-applied state and objects already gone). ``rollback`` must work from the Injection alone, in a
fresh process (``gameday reconcile`` after the runner was killed), so ``undo`` holds everything needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from blueprints.campaign import BlastRadius

S = TypeVar("S", bound=BaseModel, contravariant=True)


class Change(BaseModel):
    """One object the fault creates, changes or deletes, and how that is undone (for the plan and dry-run)."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(description="create | patch | scale | delete | cordon | agent | local")
    object: str = Field(description="e.g. apps/v1 Deployment kube-system/coredns, or node/<name> agent")
    detail: str = ""
    undo: str = Field(description="how rollback reverts it, in words")


class Injection(BaseModel):
    """A planned fault: everything it will touch and everything needed to undo it. Stored in the ledger."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    stage: str
    fault_id: str
    kind: str
    spec: dict[str, Any]
    summary: str
    targets: list[str] = Field(default_factory=list, description="resolved objects, e.g. node/gpu-3, pod/ns/name")
    changes: list[Change] = Field(default_factory=list)
    undo: dict[str, Any] = Field(default_factory=dict, description="state captured at plan/inject time for rollback")
    cluster_scoped_ledger: bool = Field(default=True, description="also recorded in the cluster (ConfigMap)")
    planned_at: datetime


class Evidence(BaseModel):
    """Proof that a fault landed (or did not)."""

    model_config = ConfigDict(extra="forbid")

    landed: bool
    summary: str
    details: dict[str, Any] = Field(default_factory=dict)


@dataclass
class FaultContext:
    """What a fault behaviour may use: the cluster facade, Prometheus, settings, a logger, the blast radius.

    ``cluster`` is a ``tasks.cluster.Cluster``; ``agents`` finds and calls node agents (agent-held faults);
    ``undo_state`` lets ``inject`` add to ``Injection.undo`` (the runner re-writes the ledger entry).
    """

    cluster: Any
    run_id: str
    prometheus_url: str | None = None
    agents: Any = None
    blast_radius: BlastRadius | None = None
    runner_user: str = "gameday-runner"
    selection_seed: str = ""
    """Seeds which targets a fault's selector picks (with the stage and fault id; the run id when empty): the
    same seed over the same candidates picks the same targets, so ``gameday plan --seed S`` shows what
    ``gameday run --seed S`` hits."""
    committed: dict[str, list[str]] = field(default_factory=dict)
    """The targets the run's plan named, per ``<stage>/<fault id>``: a stage keeps those still there and picks
    again only in place of one that is gone."""
    log: Callable[[str], None] = print
    extra: dict[str, Any] = field(default_factory=dict)


class FaultBehaviour(Protocol, Generic[S]):
    """plan / inject / verify / rollback for one fault kind."""

    kind: ClassVar[str]

    def plan(self, spec: S, ctx: FaultContext, *, run_id: str, stage: str, fault_id: str) -> Injection:
        """Resolve targets and describe every change, reading only; raise BlastRadiusExceeded if too big."""

    def inject(self, injection: Injection, ctx: FaultContext) -> Injection:
        """Apply the fault; return the Injection with any undo state captured while applying."""

    def verify(self, injection: Injection, ctx: FaultContext) -> Evidence:
        """Prove the fault landed."""

    def rollback(self, injection: Injection, ctx: FaultContext) -> None:
        """Undo the fault; idempotent; must work in a fresh process from the Injection alone."""

    def renew(self, injection: Injection, ctx: FaultContext) -> None:
        """Keep an agent-held fault alive (renew its lease); a no-op for cluster faults."""
