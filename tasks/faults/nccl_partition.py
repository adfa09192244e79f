"""nccl-partition: cut socket traffic between training ranks. Transport: sockets only (RDMA/IB untouched).

Modes:
- ``iptables`` / ``nft``: each chosen node's agent adds a per-fault chain (``GD-<tag>-I``/``-O``) or
  table (``inet gameday_<tag>``) that DROPs or REJECTs (TCP reset) traffic to/from ``peers`` (optionally a
  port range), in one or both directions, under a lease. Undo: the agent removes exactly that chain/table.
  Blast radius: traffic between the chosen nodes and the peers.
- ``network-policy``: one NetworkPolicy per namespace of ``pod_selector``, named
  ``gameday-partition-<hash>``, selecting the pods by their labels and allowing no ingress and/or no
  egress except DNS (port 53): the selected pods are cut from each other and everything else. It needs a
  CNI that enforces NetworkPolicy. Undo: delete exactly those policies. Blast radius: every pod matching
  the labels in those namespaces (so the selector mode must be ``all``).
For sockets-only NCCL runs set ``NCCL_IB_DISABLE=1``; an InfiniBand job is not partitioned by this fault.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, Field, RootModel

from agents.protocol import PartitionParams
from blueprints.faults import NcclPartition
from tasks.cluster_ops import Manifest
from tasks.errors import InjectionFailed, NotFound, TargetError
from tasks.faults.agent_held import AgentHeldFault, AgentHeldUndo
from tasks.faults.base import Change, Evidence, FaultContext, Injection, Undo, undo_of, with_undo
from tasks.faults.selection import MANAGED_BY, check_blast_radius, name_of, namespace_of, now

_DNS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def policy_body(name: str, labels: dict[str, str], direction: str, run_id: str) -> Manifest:
    """The NetworkPolicy isolating pods with ``labels`` (DNS egress still allowed)."""
    types = {"both": ["Ingress", "Egress"], "ingress": ["Ingress"], "egress": ["Egress"]}[direction]
    rules = {**({"ingress": []} if "Ingress" in types else {}),
             **({"egress": [{"ports": _DNS}]} if "Egress" in types else {})}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "labels": {**MANAGED_BY, "gameday.dev/run": run_id[:63]}},
            "spec": {"podSelector": {"matchLabels": labels}, "policyTypes": types, **rules}}


class AgentPartitionUndo(AgentHeldUndo):
    """iptables / nft: held by the agents, as every agent-held fault."""

    mode: Literal["iptables", "nft"]


class PolicyPartitionUndo(Undo):
    """network-policy: the NetworkPolicy ``name`` in each of ``namespaces``."""

    mode: Literal["network-policy"]
    name: str
    namespaces: list[str]
    labels: dict[str, str]
    """The labels of the pods it isolates."""
    direction: Literal["both", "ingress", "egress"]


class NcclPartitionUndo(RootModel[Annotated[AgentPartitionUndo | PolicyPartitionUndo,
                                            Field(discriminator="mode")]]):
    """the agent removes exactly its chain/table

    In ``network-policy`` mode rollback deletes exactly the NetworkPolicies it created. One model per mode, told
    apart by ``mode``.
    """


class NcclPartitionFault(AgentHeldFault):
    """Behaviour of the nccl-partition kind."""

    kind: ClassVar[str] = "nccl-partition"
    blast_radius: ClassVar[str] = "traffic between the chosen nodes and the peers"
    undo: ClassVar[type[BaseModel]] = NcclPartitionUndo
    held: ClassVar[type[AgentHeldUndo]] = AgentPartitionUndo
    leased: ClassVar[bool] = True
    what: ClassVar[str] = "socket partition"

    def node_params(self, spec: NcclPartition, ctx: FaultContext, node: str) -> PartitionParams:
        """The same chain/table request on every chosen node."""
        return PartitionParams(backend="nft" if spec.mode == "nft" else "iptables", action=spec.action,
                               direction=spec.direction, peers=list(spec.peers), port_range=spec.port_range)

    def plan(self, spec: NcclPartition, ctx: FaultContext, *, run_id: str, stage: str, fault_id: str) -> Injection:
        """Agent modes: as every agent-held fault. network-policy: name the policies and count the pods."""
        if spec.mode != "network-policy":
            inj = super().plan(spec, ctx, run_id=run_id, stage=stage, fault_id=fault_id)
            return with_undo(inj, AgentPartitionUndo.model_validate({**inj.undo, "mode": spec.mode}))
        sel = spec.pod_selector
        assert sel is not None
        if sel.mode != "all":
            raise InjectionFailed("nccl-partition network-policy selects pods by label: pod_selector.mode must be "
                                  f"'all', not {sel.mode!r}")
        if not sel.label_selector:
            raise InjectionFailed("nccl-partition network-policy needs pod_selector.label_selector (it would "
                                  "otherwise isolate every pod in the namespaces)")
        pods = ctx.cluster.list_pods(list(sel.namespaces), sel.label_selector)
        if not pods:
            raise TargetError(f"nccl-partition: no pod matches {sel.label_selector} in {sel.namespaces}")
        check_blast_radius(ctx, self.kind, pods=len(pods))
        digest = hashlib.sha256(f"{run_id}/{stage}/{fault_id}".encode()).hexdigest()[:10]
        name = f"gameday-partition-{digest}"
        changes = [Change(action="create", object=f"networking.k8s.io/v1 NetworkPolicy {ns}/{name}",
                          detail=f"isolate pods {sel.label_selector} ({spec.direction}, DNS allowed)",
                          undo="delete the NetworkPolicy") for ns in sel.namespaces]
        return Injection(
            run_id=run_id, stage=stage, fault_id=fault_id, kind=self.kind, spec=spec.model_dump(mode="json"),
            summary=f"NetworkPolicy partition of {len(pods)} pod(s) {sel.label_selector}",
            targets=[f"pod/{namespace_of(p)}/{name_of(p)}" for p in pods], changes=changes,
            undo=PolicyPartitionUndo(mode="network-policy", name=name, namespaces=list(sel.namespaces),
                                     labels=dict(sel.label_selector),
                                     direction=spec.direction).model_dump(mode="json"),
            planned_at=now(),
        )

    def inject(self, injection: Injection, ctx: FaultContext) -> Injection:
        """Agent modes: the agents apply it. network-policy: create the policies."""
        u = undo_of(injection, NcclPartitionUndo).root
        if not isinstance(u, PolicyPartitionUndo):
            return super().inject(injection, ctx)
        for ns in u.namespaces:
            ctx.cluster.create_network_policy(ns, policy_body(u.name, u.labels, u.direction, injection.run_id))
        return injection

    def verify(self, injection: Injection, ctx: FaultContext) -> Evidence:
        """Agent modes: chain/table present. network-policy: the policies exist and select the pods."""
        u = undo_of(injection, NcclPartitionUndo).root
        if not isinstance(u, PolicyPartitionUndo):
            return super().verify(injection, ctx)
        found = {}
        for ns in u.namespaces:
            try:
                pol = ctx.cluster.read_network_policy(ns, u.name)
                selector = pol.spec.pod_selector if pol.spec else None
                found[ns] = dict((selector.match_labels if selector else None) or {}) == u.labels
            except NotFound:
                found[ns] = False
        ok = all(found.values())
        return Evidence(landed=ok, summary=f"NetworkPolicy {u.name} present in {sum(found.values())}/{len(found)} "
                        "namespace(s) (enforcement depends on the CNI)", details={"policies": found})

    def rollback(self, injection: Injection, ctx: FaultContext) -> None:
        """Agent modes: agents revert. network-policy: delete exactly the policies (gone is fine)."""
        u = undo_of(injection, NcclPartitionUndo).root
        if not isinstance(u, PolicyPartitionUndo):
            super().rollback(injection, ctx)
            return
        for ns in u.namespaces:
            ctx.cluster.delete_network_policy(ns, u.name)

    def renew(self, injection: Injection, ctx: FaultContext) -> None:
        """Agent modes: renew leases. network-policy has no lease (the ledger and reconcile cover it)."""
        if not isinstance(undo_of(injection, NcclPartitionUndo).root, PolicyPartitionUndo):
            super().renew(injection, ctx)
