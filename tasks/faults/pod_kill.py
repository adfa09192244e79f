"""pod-kill: delete selected pods (Chaos Mesh's pod-kill); their controllers recreate them.

Blast radius: the chosen pods (counted against max_pods / max_pods_percent of all pods in the cluster).
Undo: deleting cannot be undone. Rollback only waits (best effort, bounded) until every namespace has at
least as many running pods matching the selector as at plan time, and logs whether that happened.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from blueprints.faults import PodKill
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


def _live(pod: Any) -> bool:
    return not meta(pod).deletion_timestamp and bool(pod.status) and pod.status.phase in ("Running", "Pending")


def running_counts(ctx: FaultContext, namespaces: list[str], labels: dict[str, str],
                   field_selector: str | None) -> dict[str, int]:
    """Running, non-terminating pods matching the selector, per namespace."""
    out = {ns: 0 for ns in namespaces}
    for p in ctx.cluster.list_pods(namespaces, labels, field_selector):
        if not meta(p).deletion_timestamp and p.status and p.status.phase == "Running":
            out[namespace_of(p)] = out.get(namespace_of(p), 0) + 1
    return out


class PlannedPod(Undo):
    """A pod the plan picked, by name and uid (a pod of that name with another uid is its replacement)."""

    namespace: str
    name: str
    uid: str | None


class PodKillUndo(Undo):
    """deleting cannot be undone; rollback waits (bounded) for controllers to bring the running counts back

    It waits until each namespace has at least ``running_before`` running pods matching the selector again.
    """

    pods: list[PlannedPod]
    running_before: dict[str, int]
    """Running pods matching the selector per namespace, at plan time."""
    namespaces: list[str]
    labels: dict[str, str]
    field_selector: str | None
    grace_s: int
    deleted: list[str] = Field(default_factory=list)
    """``<namespace>/<name>`` of the pods inject deleted (some may have been gone already)."""


class PodKillFault:
    """Behaviour of the pod-kill kind."""

    kind: ClassVar[str] = "pod-kill"
    blast_radius: ClassVar[str] = (
        "the chosen pods (counted against max_pods / max_pods_percent of all pods in the cluster)"
    )
    undo: ClassVar[type[BaseModel]] = PodKillUndo
    leased: ClassVar[bool] = False

    def plan(self, spec: PodKill, ctx: FaultContext, *, run_id: str, stage: str, fault_id: str) -> Injection:
        """Pick the pods now (they are named in the plan) and check the blast radius."""
        sel = spec.selector
        pods = [p for p in ctx.cluster.list_pods(sel.namespaces, sel.label_selector, sel.field_selector) if _live(p)]
        pods.sort(key=lambda p: (namespace_of(p), name_of(p)))
        chosen = choose(pods, sel, picker(ctx, run_id, stage, fault_id), keep=committed(ctx, stage, fault_id),
                        key=lambda p: f"pod/{namespace_of(p)}/{name_of(p)}")
        check_blast_radius(ctx, "pod-kill", pods=len(chosen))
        picked = [PlannedPod(namespace=namespace_of(p), name=name_of(p), uid=meta(p).uid) for p in chosen]
        before = running_counts(ctx, sel.namespaces, sel.label_selector, sel.field_selector)
        undo = PodKillUndo(pods=picked, running_before=before, namespaces=sel.namespaces,
                           labels=dict(sel.label_selector), field_selector=sel.field_selector,
                           grace_s=int(spec.grace_period.total_seconds()))
        changes = [Change(action="delete", object=f"v1 Pod {p.namespace}/{p.name}",
                          undo="none possible: the controller recreates it; rollback waits for the count")
                   for p in picked]
        return Injection(run_id=run_id, stage=stage, fault_id=fault_id, kind=self.kind,
                         spec=spec.model_dump(mode="json"), summary=f"kill {len(picked)} of {len(pods)} pod(s)",
                         targets=[f"pod/{p.namespace}/{p.name}" for p in picked], changes=changes,
                         undo=undo.model_dump(mode="json"), planned_at=now())

    def inject(self, injection: Injection, ctx: FaultContext) -> Injection:
        """Delete exactly the planned pods; record which were deleted (some may already be gone)."""
        u = undo_of(injection, PodKillUndo)
        deleted = [f"{p.namespace}/{p.name}" for p in u.pods
                   if ctx.cluster.delete_pod(p.namespace, p.name, u.grace_s)]
        return with_undo(injection, u.model_copy(update={"deleted": deleted}))

    def verify(self, injection: Injection, ctx: FaultContext) -> Evidence:
        """Every planned pod is gone, terminating, or replaced by a new pod (another uid)."""
        u = undo_of(injection, PodKillUndo)
        current = {(namespace_of(p), name_of(p)): p for p in
                   ctx.cluster.list_pods(u.namespaces, u.labels, u.field_selector)}
        survivors = []
        for p in u.pods:
            pod = current.get((p.namespace, p.name))
            if pod is not None and meta(pod).uid == p.uid and not meta(pod).deletion_timestamp:
                survivors.append(f"{p.namespace}/{p.name}")
        return Evidence(landed=bool(u.pods) and not survivors,
                        summary=f"{len(u.pods) - len(survivors)}/{len(u.pods)} pod(s) killed",
                        details={"deleted": u.deleted, "survivors": survivors})

    def rollback(self, injection: Injection, ctx: FaultContext) -> None:
        """Nothing to undo; wait (bounded, best effort) for controllers to restore the running counts."""
        u = undo_of(injection, PodKillUndo)
        deadline = time.monotonic() + ctx.timeouts.rollback_wait_s
        while True:
            counts = running_counts(ctx, u.namespaces, u.labels, u.field_selector)
            short = {ns: (counts.get(ns, 0), n) for ns, n in u.running_before.items() if counts.get(ns, 0) < n}
            if not short or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        ctx.log(f"pod-kill {injection.fault_id}: " + ("controllers restored the running pods" if not short
                                                       else f"not restored in time: {short}"))

    def renew(self, injection: Injection, ctx: FaultContext) -> None:
        """Nothing to renew."""
