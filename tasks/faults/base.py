"""The contract every fault behaviour implements, and the data it exchanges with the runner.

A fault is defined once: its spec is a pydantic model in ``blueprints/faults.py``; its behaviour is one
module here with a class implementing :class:`FaultBehaviour`, registered in ``tasks/faults/__init__.py``.

Order, enforced by the runner: ``plan`` (pure: reads only) → the Injection is written to the ledger →
``inject`` → ``verify`` (evidence that it landed) → … → ``rollback`` (always; idempotent; tolerates
half-applied state and objects already gone). ``rollback`` must work from the Injection alone, in a
fresh process (``gameday reconcile`` after the runner was killed), so ``undo`` holds everything needed.

Each behaviour declares its undo model (an :class:`Undo` subclass, or a ``RootModel`` over several where the
state differs by mode); ``Injection.undo`` is that model as JSON, and behaviours read it with :func:`undo_of`
and write it with :func:`with_undo`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from tasks.settings import Settings

if TYPE_CHECKING:
    from blueprints.campaign import BlastRadius
    from tasks.agent_client import AgentClient
    from tasks.cluster import Cluster

S = TypeVar("S", bound=BaseModel, contravariant=True)
U = TypeVar("U", bound=BaseModel)


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
    undo: dict[str, Any] = Field(default_factory=dict, description=(
        "state captured at plan/inject time for rollback: the behaviour's undo model as JSON"))
    cluster_scoped_ledger: bool = Field(default=True, description="also recorded in the cluster (ConfigMap)")
    planned_at: datetime
    _process: Any = PrivateAttr(default=None)
    """What ``inject`` started in this process and ``rollback`` stops, when it is the same run (never in the
    ledger: a rollback from the ledger alone finds it another way)."""


class Undo(BaseModel):
    """The base of every fault's undo model and of the models inside one: state captured at plan and inject time
    that rollback needs, stored as JSON in the ledger (``Injection.undo``)."""

    # Unknown keys are ignored, not errors: a ledger entry written by an older version (on disk or in the
    # cluster's ConfigMap) must always roll back, whatever keys it carries that this version no longer has.
    model_config = ConfigDict(extra="ignore", frozen=True)


def undo_of(injection: Injection, model: type[U]) -> U:
    """``injection.undo`` read as ``model``."""
    return model.model_validate(injection.undo)


def with_undo(injection: Injection, undo: BaseModel) -> Injection:
    """A copy of ``injection`` whose ``undo`` is ``undo`` (as JSON)."""
    return injection.model_copy(update={"undo": undo.model_dump(mode="json")})


class Evidence(BaseModel):
    """Proof that a fault landed (or did not)."""

    model_config = ConfigDict(extra="forbid")

    landed: bool
    summary: str
    details: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Timeouts:
    """How long fault behaviours wait for what they check, in seconds."""

    verify_s: float = 20.0
    """``verify`` waits this long for evidence that a fault landed."""
    restore_s: float = 30.0
    """coredns-outage's rollback waits this long for DNS to answer as it did before."""
    rollback_wait_s: float = 30.0
    """pod-kill's rollback waits this long for controllers to bring the running counts back."""
    storm_max_s: float = 900.0
    """A client storm stops by itself after this long, rolled back or not."""


@dataclass
class FaultContext:
    """What a fault behaviour may use: the cluster, node agents, settings, Prometheus, timeouts, a logger, the
    blast radius, and which targets the run's plan named."""

    cluster: Cluster
    run_id: str
    settings: Settings = field(default_factory=Settings.defaults)
    prometheus_url: str | None = None
    agents: AgentClient | None = None
    """Finds and calls node agents (agent-held faults); built from the cluster and settings when first needed."""
    timeouts: Timeouts = field(default_factory=Timeouts)
    dns_server: str | None = None
    """The DNS server coredns-outage's verify asks (``ip[:port]``); the lab's kube-dns when unset."""
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


class FaultBehaviour(Protocol, Generic[S]):
    """plan / inject / verify / rollback for one fault kind, and what it touches and how it is undone, in words."""

    kind: ClassVar[str]
    blast_radius: ClassVar[str]
    """What the fault can reach (``gameday list-faults`` prints it)."""
    undo: ClassVar[type[BaseModel]]
    """The model of ``Injection.undo``; the first paragraph of its docstring says how rollback undoes the fault,
    from the ledger alone (``gameday list-faults`` prints it)."""
    leased: ClassVar[bool]
    """Held by node agents under a lease the runner renews while the fault is in place."""

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
