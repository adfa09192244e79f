"""The scheduler: binds pending pods to Ready, schedulable nodes with room, spreading them out.

Feasible: node Ready, not cordoned, every NoSchedule/NoExecute taint tolerated, nodeSelector and
required node affinity satisfied, cpu/memory/``nvidia.com/gpu``/pod-count requests fit. Score: the
feasible node with the fewest pods (among the first 100 found from a rotating start, like the real
scheduler's percentageOfNodesToScore). Binds through ``pods/binding`` (falling back to a
spec.nodeName patch if the API server does not serve that subresource).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from lab.runtime.client import api_path
from lab.runtime.cluster import SCHEDULER, Cluster
from lab.runtime.errors import ApiStatusError
from lab.runtime.informer import Key
from lab.runtime.metrics import SCHEDULING_ATTEMPTS, SCHEDULING_LATENCY
from lab.runtime.objects import (
    is_active_pod,
    label_selector_match,
    labels_match,
    node_ready,
    parse_quantity,
    parse_time,
    pod_requests,
    untolerated,
)
from lab.runtime.workqueue import WorkQueue

log = logging.getLogger(__name__)
Obj = dict[str, Any]
NODES_TO_SCORE = 100
SCHEDULERS = ("", "default-scheduler")


def node_fits(node: Obj, pod: Obj, used: dict[str, float], requests: dict[str, float] | None = None) -> bool:
    """Whether a pod may be placed on a node already carrying `used` requests (incl. "pods")."""
    spec, nspec = pod.get("spec") or {}, node.get("spec") or {}
    if not node_ready(node) or nspec.get("unschedulable"):
        return False
    if untolerated(spec.get("tolerations") or [], nspec.get("taints") or [], ("NoSchedule", "NoExecute")):
        return False
    labels = (node.get("metadata") or {}).get("labels") or {}
    if not labels_match(spec.get("nodeSelector") or {}, labels):
        return False
    terms = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {})
        .get("requiredDuringSchedulingIgnoredDuringExecution", {})
        .get("nodeSelectorTerms")
    )
    if terms and not any(label_selector_match({"matchExpressions": t.get("matchExpressions")}, labels) for t in terms):
        return False
    alloc = (node.get("status") or {}).get("allocatable") or {}
    if used.get("pods", 0) + 1 > parse_quantity(alloc.get("pods", 110)):
        return False
    for name, qty in (pod_requests(pod) if requests is None else requests).items():
        if qty > 0 and used.get(name, 0.0) + qty > parse_quantity(alloc.get(name, 0)) + 1e-9:
            return False
    return True


def pick_node(nodes: list[Obj], pod: Obj, usage: dict[str, dict[str, float]], start: int = 0) -> str | None:
    """The feasible node with the fewest pods among the first NODES_TO_SCORE found from start."""
    best: tuple[float, str] | None = None
    requests = pod_requests(pod)
    found = 0
    count = len(nodes)
    for i in range(count):
        node = nodes[(start + i) % count]
        name = node["metadata"]["name"]
        used = usage.get(name, {})
        if not node_fits(node, pod, used, requests):
            continue
        score = (used.get("pods", 0.0), name)
        if best is None or score < best:
            best = score
        found += 1
        if found >= NODES_TO_SCORE:
            break
    return best[1] if best else None


class Scheduler:
    """Watches pending pods and binds them."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.queue: WorkQueue[Key] = WorkQueue("scheduler")
        self.usage: dict[str, dict[str, float]] = {}
        self.placed: dict[Key, tuple[str, dict[str, float]]] = {}
        self.unschedulable: set[Key] = set()
        self.token = cluster.token(SCHEDULER)
        self._start = 0
        self._binding_served = True
        cluster.pods.add_handler(self._on_pod)
        cluster.nodes.add_handler(self._on_node)

    def _account(self, key: Key, node: str | None, pod: Obj | None) -> None:
        old = self.placed.pop(key, None)
        if old is not None:
            used = self.usage.setdefault(old[0], {})
            for name, qty in old[1].items():
                used[name] = used.get(name, 0.0) - qty
        if node and pod is not None:
            req = {**pod_requests(pod), "pods": 1.0}
            self.placed[key] = (node, req)
            used = self.usage.setdefault(node, {})
            for name, qty in req.items():
                used[name] = used.get(name, 0.0) + qty

    def _on_pod(self, etype: str, pod: Obj) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        key = (meta.get("namespace", ""), meta["name"])
        node = spec.get("nodeName")
        if etype == "DELETED" or not is_active_pod(pod):
            self._account(key, None, None)
            self.unschedulable.discard(key)
            return
        if node:
            if self.placed.get(key, ("",))[0] != node:
                self._account(key, node, pod)
            self.unschedulable.discard(key)
        elif spec.get("schedulerName", "") in SCHEDULERS:
            self.queue.add(key)

    def _on_node(self, etype: str, node: Obj) -> None:
        for key in list(self.unschedulable):
            self.queue.add(key)
        self.unschedulable.clear()

    async def schedule(self, key: Key) -> None:
        """Place one pending pod, if it still is pending."""
        pod = self.cluster.pods.get(*key)
        if pod is None or (pod.get("spec") or {}).get("nodeName") or not is_active_pod(pod) or key in self.placed:
            return
        nodes = self.cluster.nodes.items()
        self._start = (self._start + 7) % max(len(nodes), 1)
        node = pick_node(nodes, pod, self.usage, self._start)
        if node is None:
            SCHEDULING_ATTEMPTS.labels("unschedulable").inc()
            self.unschedulable.add(key)
            return
        self._account(key, node, pod)
        try:
            await self.bind(key, node)
        except Exception:
            self._account(key, None, None)
            raise
        SCHEDULING_ATTEMPTS.labels("scheduled").inc()
        created = parse_time(pod["metadata"].get("creationTimestamp"))
        if created is not None:
            SCHEDULING_LATENCY.observe(max(time.time() - created, 0.0))

    async def bind(self, key: Key, node: str) -> None:
        """Bind a pod to a node."""
        ns, name = key
        api = self.cluster.api
        if self._binding_served:
            binding = {
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name, "namespace": ns},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            }
            try:
                await api.create(api_path("", "v1", "pods", ns, name, "binding"), binding, token=self.token)
                return
            except ApiStatusError as err:
                if err.code == 409 and "already assigned" in err.message:
                    return
                if err.code not in (404, 405) or self.cluster.pods.get(ns, name) is None:
                    raise
                self._binding_served = False
        updated = await api.patch(api_path("", "v1", "pods", ns, name), {"spec": {"nodeName": node}}, token=self.token)
        self.cluster.pods.assume(updated)

    async def retry_loop(self) -> None:
        """Retry unschedulable pods every few seconds (resources may have been freed)."""
        while True:
            await asyncio.sleep(max(self.cluster.config.scaled(5.0), 0.5))
            self._on_node("RESYNC", {})

    async def run(self) -> None:
        """Schedule forever."""
        await asyncio.gather(self.queue.run(self.schedule, workers=8), self.retry_loop())
