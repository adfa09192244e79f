"""Faults held by node agents: the plan/inject/verify/rollback/renew that gpu-xid, gpu-degrade and nccl-partition
(iptables/nft modes) share. One agent fault per target node, the same agent fault id on each; rollback reverts on
every node, and an unreachable agent is logged, not fatal: its lease expires and the agent reverts on its own.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection
from typing import Any, ClassVar, NotRequired, TypedDict

from pydantic import Field, TypeAdapter, field_validator

from agents.protocol import FaultParams, InjectRequest
from tasks.agent_client import AgentClient, AgentHttp, AgentUnreachable, safe_id
from tasks.errors import AgentError, InjectionFailed, RollbackFailed, TargetError
from tasks.faults.base import Change, Evidence, FaultContext, Injection, Undo, undo_of, with_undo
from tasks.faults.selection import check_blast_radius, choose, committed, name_of, now, picker


def agent_ids(injection: Injection) -> tuple[str, str]:
    """The (fault_id, run_id) an injection uses on its agents: unique per run, stage and fault."""
    digest = hashlib.sha256(f"{injection.run_id}/{injection.stage}/{injection.fault_id}".encode()).hexdigest()[:12]
    return f"{safe_id(injection.fault_id, 100)}-{digest}", safe_id(injection.run_id)


def agents_of(ctx: FaultContext) -> AgentClient:
    """``ctx.agents``, or one built from the cluster and the context's settings."""
    if ctx.agents is not None:
        return ctx.agents
    client = AgentClient.for_cluster(ctx.cluster, ctx.settings)
    ctx.agents = client
    return client


_FAULT_PARAMS: TypeAdapter[FaultParams] = TypeAdapter(FaultParams)


class AgentHeldUndo(Undo):
    """What every agent-held fault records: the id its agents hold it under, its lease, each node's request and
    agent."""

    agent_fault_id: str
    agent_run_id: str
    ttl_seconds: float
    """The lease: an agent not renewed within it reverts on its own."""
    params: dict[str, FaultParams]
    """Each node's request to its agent."""
    endpoints: dict[str, str] = Field(default_factory=dict)
    """Each node's agent URL, as found at plan time and used at inject (the fallback when it cannot be found)."""

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, value: Any) -> Any:
        # The agent protocol's models forbid unknown keys (on the wire they are errors); a request in the ledger
        # that an older version wrote may carry keys the protocol no longer has, and must still roll back.
        if isinstance(value, dict):
            return {node: _FAULT_PARAMS.validate_python(params, extra="ignore") for node, params in value.items()}
        return value


class NodeEvidence(TypedDict):
    """One node agent's read-back of the fault."""

    landed: bool
    summary: str
    details: NotRequired[dict[str, str | int | float | bool | None]]


class AgentHeldFault:
    """Shared behaviour of faults held by node agents; subclasses say which nodes and which params."""

    kind: ClassVar[str]
    what: ClassVar[str]
    held: ClassVar[type[AgentHeldUndo]] = AgentHeldUndo
    """The model of the undo while agents hold the fault: what every agent-held fault records, and what the kind
    adds to it (inject writes it back whole)."""

    def node_params(self, spec: Any, ctx: FaultContext, node: str) -> FaultParams:
        """The agent params for one node (may read the node, never change it)."""
        raise NotImplementedError

    def pick_nodes(self, spec: Any, ctx: FaultContext, rng: random.Random | None = None,
                   keep: Collection[str] = ()) -> list[str]:
        """The target nodes: the spec's selector (labels, optional names), then its mode (the planned ``keep``
        first, the rest picked with ``rng``)."""
        sel = spec.selector
        if sel is None:
            raise InjectionFailed(f"{self.kind}: this mode needs a node selector naming where the agent acts")
        nodes = sorted(name_of(n) for n in ctx.cluster.list_nodes(sel.label_selector)
                        if not sel.names or name_of(n) in sel.names)
        chosen = choose(nodes, sel, rng, keep=keep, key=lambda n: f"node/{n}")
        if not chosen:
            raise TargetError(f"{self.kind}: no node matches {sel.label_selector or sel.names}")
        check_blast_radius(ctx, self.kind, nodes=len(chosen), gpus=len(self.gpus(spec, chosen)))
        return chosen

    def gpus(self, spec: Any, nodes: list[str]) -> list[str]:
        """The GPUs the fault acts on, as ``<node>/<index>`` (none unless the spec names a ``gpu_index``)."""
        index = getattr(spec, "gpu_index", None)
        return [] if index is None else [f"{n}/{index}" for n in nodes]

    def plan(self, spec: Any, ctx: FaultContext, *, run_id: str, stage: str, fault_id: str) -> Injection:
        """Choose the nodes, build each node's request and find each agent (read only)."""
        nodes = self.pick_nodes(spec, ctx, picker(ctx, run_id, stage, fault_id), committed(ctx, stage, fault_id))
        params = {n: self.node_params(spec, ctx, n) for n in nodes}
        endpoints = {}
        for n in nodes:
            try:
                endpoints[n] = agents_of(ctx).endpoint(n)
            except AgentUnreachable as e:
                raise TargetError(f"{self.kind}: {e}") from e
        agents_of(ctx).check_credential()
        probe = Injection(run_id=run_id, stage=stage, fault_id=fault_id, kind=self.kind, spec={}, summary="",
                          planned_at=now())
        afid, arun = agent_ids(probe)
        changes = [Change(action="agent", object=f"node/{n} agent", detail=f"{self.what} (fault {afid})",
                          undo="agent revert (idempotent); else the agent reverts when the lease expires")
                   for n in nodes]
        return Injection(
            run_id=run_id, stage=stage, fault_id=fault_id, kind=self.kind, spec=spec.model_dump(mode="json"),
            summary=f"{self.what} on {len(nodes)} node(s) via agents",
            targets=[f"node/{n}" for n in nodes] + [f"gpu/{g}" for g in self.gpus(spec, nodes)],
            changes=changes, planned_at=now(),
            undo=AgentHeldUndo(agent_fault_id=afid, agent_run_id=arun, ttl_seconds=spec.lease.total_seconds(),
                               params=params, endpoints=endpoints).model_dump(mode="json"),
        )

    def _client(self, ctx: FaultContext, u: AgentHeldUndo, node: str) -> AgentHttp:
        client = agents_of(ctx)
        try:
            return client.for_node(node)
        except AgentUnreachable:
            known = u.endpoints.get(node)
            if known:
                return client.at(known)
            raise

    def inject(self, injection: Injection, ctx: FaultContext) -> Injection:
        """Ask each node's agent to hold the fault under a lease."""
        u = undo_of(injection, self.held)
        endpoints = dict(u.endpoints)
        for node, params in u.params.items():
            req = InjectRequest(fault_id=u.agent_fault_id, run_id=u.agent_run_id, ttl_seconds=u.ttl_seconds,
                                params=params)
            try:
                with self._client(ctx, u, node) as agent:
                    endpoints[node] = agent.url
                    agent.inject(req)
            except (AgentError, AgentUnreachable) as e:
                raise InjectionFailed(f"{self.kind} on node {node}: {e}") from e
        return with_undo(injection, u.model_copy(update={"endpoints": endpoints}))

    def verify(self, injection: Injection, ctx: FaultContext) -> Evidence:
        """Each agent's read-back (line present / field reads back / chain present)."""
        u = undo_of(injection, self.held)
        per_node: dict[str, NodeEvidence] = {}
        for node in u.params:
            try:
                with self._client(ctx, u, node) as agent:
                    st = agent.status(u.agent_fault_id)
            except (AgentError, AgentUnreachable) as e:
                per_node[node] = {"landed": False, "summary": str(e)}
                continue
            ev = st.evidence if st is not None else None
            per_node[node] = {"landed": bool(ev and ev.landed),
                              "summary": ev.summary if ev else "the agent does not hold this fault",
                              "details": ev.details if ev else {}}
        ok = sum(1 for v in per_node.values() if v["landed"])
        return Evidence(landed=bool(per_node) and ok == len(per_node),
                        summary=f"{self.what}: in place on {ok}/{len(per_node)} node(s)", details={"nodes": per_node})

    def rollback(self, injection: Injection, ctx: FaultContext) -> None:
        """Revert on every node; an unreachable agent is logged (its lease expires); a refusal raises."""
        u = undo_of(injection, self.held)
        failed = []
        for node in u.params:
            try:
                with self._client(ctx, u, node) as agent:
                    agent.revert(u.agent_fault_id)
            except AgentUnreachable as e:
                ctx.log(f"{self.kind} rollback: agent on {node} unreachable ({e}); its lease "
                        f"({u.ttl_seconds:g}s) will expire and the agent reverts on its own")
            except AgentError as e:
                failed.append(f"{node}: {e}")
        if failed:
            raise RollbackFailed(f"{self.kind}: " + "; ".join(failed))

    def renew(self, injection: Injection, ctx: FaultContext) -> None:
        """Renew the lease on every node; a fault an agent no longer holds is an error (the stage aborts)."""
        u = undo_of(injection, self.held)
        for node in u.params:
            with self._client(ctx, u, node) as agent:
                st = agent.renew(u.agent_fault_id, u.ttl_seconds)
            if st is None:
                raise AgentError(f"{self.kind}: the agent on {node} no longer holds fault {u.agent_fault_id} "
                                 "(lease expired and reverted)")
