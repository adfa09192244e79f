"""node-cordon: mark selected nodes unschedulable, optionally draining them through the eviction API.

Blast radius: the chosen nodes (and, with drain, the pods on them). Undo: the plan records which chosen
nodes were *not* already cordoned; rollback uncordons exactly those, never a node someone else cordoned.
Evicted pods are not brought back (their controllers reschedule them elsewhere).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from blueprints.faults import NodeCordon
from tasks.errors import NotFound
from tasks.faults.base import Change, Evidence, FaultContext, Injection, Undo, undo_of, with_undo
from tasks.faults.selection import (
    check_blast_radius,
    choose,
    committed,
    meta,
    name_of,
    namespace_of,
    now,
    picker,
)


def drainable(ctx: FaultContext, node: str) -> list[Any]:
    """Pods on a node that a drain evicts (not DaemonSet-owned, not terminating, not finished)."""
    out = []
    for p in ctx.cluster.list_pods(None, None, f"spec.nodeName={node}"):
        owners = meta(p).owner_references or []
        if any(o.kind == "DaemonSet" for o in owners) or meta(p).deletion_timestamp:
            continue
        if p.status and p.status.phase in ("Succeeded", "Failed"):
            continue
        out.append(p)
    return out


class NodeCordonUndo(Undo):
    """the plan records which chosen nodes were not already cordoned; rollback uncordons exactly those, never a
    node someone else cordoned
    """

    nodes: list[str]
    """Every chosen node."""
    cordon: list[str]
    """The chosen nodes this fault cordons (and rollback uncordons)."""
    already_cordoned: list[str]
    drain: bool
    evicted: list[str] = Field(default_factory=list)
    """``<namespace>/<name>`` of the pods inject evicted."""


class NodeCordonFault:
    """Behaviour of the node-cordon kind."""

    kind: ClassVar[str] = "node-cordon"
    blast_radius: ClassVar[str] = "the chosen nodes (and, with drain, the pods on them)"
    undo: ClassVar[type[BaseModel]] = NodeCordonUndo
    leased: ClassVar[bool] = False

    def plan(self, spec: NodeCordon, ctx: FaultContext, *, run_id: str, stage: str, fault_id: str) -> Injection:
        """Pick the nodes, remember which were already cordoned, check the blast radius."""
        sel = spec.selector
        nodes = [n for n in ctx.cluster.list_nodes(sel.label_selector) if not sel.names or name_of(n) in sel.names]
        nodes.sort(key=lambda n: name_of(n))
        chosen = choose(nodes, sel, picker(ctx, run_id, stage, fault_id), keep=committed(ctx, stage, fault_id),
                        key=lambda n: f"node/{name_of(n)}")
        pods = sum(len(drainable(ctx, name_of(n))) for n in chosen) if spec.drain else 0
        check_blast_radius(ctx, "node-cordon", nodes=len(chosen), pods=pods)
        names = [name_of(n) for n in chosen]
        already = [name_of(n) for n in chosen if n.spec and n.spec.unschedulable]
        to_cordon = [n for n in names if n not in already]
        changes = [Change(action="cordon", object=f"v1 Node {n}", detail="drain" if spec.drain else "",
                          undo="uncordon" if n in to_cordon else "none: it was already cordoned") for n in names]
        return Injection(run_id=run_id, stage=stage, fault_id=fault_id, kind=self.kind,
                         spec=spec.model_dump(mode="json"),
                         summary=f"cordon {len(names)} node(s)" + (" and drain them" if spec.drain else ""),
                         targets=[f"node/{n}" for n in names], changes=changes,
                         undo=NodeCordonUndo(nodes=names, cordon=to_cordon, already_cordoned=already,
                                             drain=spec.drain).model_dump(mode="json"),
                         planned_at=now())

    def inject(self, injection: Injection, ctx: FaultContext) -> Injection:
        """Cordon the planned nodes (and evict their pods when draining)."""
        u = undo_of(injection, NodeCordonUndo)
        for name in u.cordon:
            ctx.cluster.set_unschedulable(name, True)
        evicted: list[str] = []
        if u.drain:
            for name in u.nodes:
                for p in drainable(ctx, name):
                    if ctx.cluster.evict_pod(namespace_of(p), name_of(p)):
                        evicted.append(f"{namespace_of(p)}/{name_of(p)}")
        return with_undo(injection, u.model_copy(update={"evicted": evicted}))

    def verify(self, injection: Injection, ctx: FaultContext) -> Evidence:
        """Every chosen node is unschedulable; with drain, no evictable pods remain on them (polled briefly)."""
        u = undo_of(injection, NodeCordonUndo)
        deadline = time.monotonic() + ctx.timeouts.verify_s
        while True:
            flags = {n: bool(getattr(ctx.cluster.read_node(n).spec, "unschedulable", False)) for n in u.nodes}
            left = {n: len(drainable(ctx, n)) for n in u.nodes} if u.drain else {}
            landed = bool(flags) and all(flags.values()) and not any(left.values())
            if landed or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        return Evidence(landed=landed, summary=f"{sum(flags.values())}/{len(flags)} node(s) cordoned",
                        details={"unschedulable": flags, "pods_left": left, "evicted": u.evicted})

    def rollback(self, injection: Injection, ctx: FaultContext) -> None:
        """Uncordon exactly the nodes this fault cordoned (a node already gone is skipped)."""
        for name in undo_of(injection, NodeCordonUndo).cordon:
            try:
                ctx.cluster.set_unschedulable(name, False)
            except NotFound:
                ctx.log(f"node-cordon rollback: node {name} is gone")

    def renew(self, injection: Injection, ctx: FaultContext) -> None:
        """Nothing to renew."""
