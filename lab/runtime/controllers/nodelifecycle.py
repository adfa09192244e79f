"""The node lifecycle controller: judges nodes by their Lease in the API, taints and evicts.

A node whose ``kube-node-lease`` renewTime is older than the grace period (40 s, scaled) gets
Ready=Unknown and the ``node.kubernetes.io/unreachable`` NoSchedule+NoExecute taints; pods that do
not tolerate the NoExecute taint are deleted after their tolerationSeconds (or the eviction timeout,
default 300 s scaled, for pods without a toleration). When the kubelet posts Ready again, the
taints go. Cordoned nodes get ``node.kubernetes.io/unschedulable:NoSchedule``; their pods stay
(only a drain, through the API's eviction subresource, removes them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from lab.runtime.client import api_path
from lab.runtime.cluster import Cluster
from lab.runtime.metrics import EVICTIONS, NODES_READY, NODES_TOTAL, PODS_BY_PHASE
from lab.runtime.objects import condition, is_terminating, node_ready, now_time, parse_time, tolerates

log = logging.getLogger(__name__)
Obj = dict[str, Any]
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"


def lease_stale(renew_time: float | None, first_seen: float, now: float, grace: float) -> bool:
    """Whether a node's last heartbeat (lease renewal, else first sight) is older than grace."""
    last = renew_time if renew_time is not None else first_seen
    return now - last > grace


def desired_taints(node: Obj, unreachable: bool) -> list[Obj]:
    """The node's taints with the lifecycle taints set as they should be (others untouched)."""
    taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("key") not in (UNREACHABLE, UNSCHEDULABLE)]
    old = {(t.get("key"), t.get("effect")): t for t in (node.get("spec") or {}).get("taints") or []}
    if unreachable:
        for effect in ("NoSchedule", "NoExecute"):
            kept = old.get((UNREACHABLE, effect))
            taints.append(kept or {"key": UNREACHABLE, "effect": effect, "timeAdded": now_time()})
    if (node.get("spec") or {}).get("unschedulable"):
        taints.append(old.get((UNSCHEDULABLE, "NoSchedule")) or {"key": UNSCHEDULABLE, "effect": "NoSchedule", "timeAdded": now_time()})
    return taints


def eviction_due(pod: Obj, taint: Obj, default_s: float, time_scale: float) -> float | None:
    """When (UNIX time) a pod must go because of a NoExecute taint; None if it tolerates it forever."""
    added = parse_time(taint.get("timeAdded")) or time.time()
    tol = tolerates((pod.get("spec") or {}).get("tolerations") or [], taint)
    if tol is None:
        return added + default_s / time_scale
    seconds = tol.get("tolerationSeconds")
    if seconds is None:
        return None
    return added + max(float(seconds), 0.0) / time_scale


class NodeLifecycleController:
    """Monitors node leases, sets conditions and taints, evicts from unreachable nodes."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.first_seen: dict[str, float] = {}

    async def _set_unknown(self, name: str) -> None:
        now = now_time()
        conds = []
        for ctype in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready"):
            conds.append({
                "type": ctype, "status": "Unknown", "reason": "NodeStatusUnknown",
                "message": "Kubelet stopped posting node status.",
                "lastHeartbeatTime": (condition(self.cluster.nodes.get("", name) or {}, ctype) or {}).get("lastHeartbeatTime", now),
                "lastTransitionTime": now,
            })
        path = api_path("", "v1", "nodes", None, name, "status")
        self.cluster.nodes.assume(await self.cluster.api.patch(path, {"status": {"conditions": conds}}))

    async def _confirm_renew_time(self, name: str, cached: float | None) -> float | None:
        """Read a suspect lease from the API itself (the informer may lag a busy emulator); on API
        trouble keep the cached time, so an unreachable API still lets nodes go stale."""
        path = api_path("coordination.k8s.io", "v1", "leases", "kube-node-lease", name)
        try:
            lease = await self.cluster.api.request("GET", path, timeout=2.0)
        except Exception:  # noqa: BLE001  # 404, 429, timeouts: judge by what the informer saw
            return cached
        return parse_time((lease.get("spec") or {}).get("renewTime")) or cached

    async def _set_taints(self, node: Obj, taints: list[Obj]) -> None:
        path = api_path("", "v1", "nodes", None, node["metadata"]["name"])
        self.cluster.nodes.assume(await self.cluster.api.patch(path, {"spec": {"taints": taints}}))

    async def monitor_once(self) -> None:
        """One pass over all nodes: conditions, taints, evictions; updates node/pod gauges."""
        cfg = self.cluster.config
        grace = cfg.scaled(cfg.node_grace_s)
        now = time.time()
        ready_count = 0
        nodes = self.cluster.nodes.items()
        evict_nodes: dict[str, Obj] = {}
        for node in nodes:
            name = node["metadata"]["name"]
            first = self.first_seen.setdefault(name, now)
            lease = self.cluster.leases.get("kube-node-lease", name)
            renew = parse_time(((lease or {}).get("spec") or {}).get("renewTime"))
            stale = lease_stale(renew, first, now, grace)
            ready = node_ready(node)
            unknown = (condition(node, "Ready") or {}).get("status") == "Unknown"
            if stale and not unknown:
                stale = lease_stale(await self._confirm_renew_time(name, renew), first, now, grace)
            if stale and not unknown:
                log.info("node %s: lease stale; Ready=Unknown", name)
                await self._set_unknown(name)
                node = self.cluster.nodes.get("", name) or node
                ready, unknown = False, True
            unreachable = unknown or (stale and not ready)
            taints = desired_taints(node, unreachable)
            if taints != ((node.get("spec") or {}).get("taints") or []):
                await self._set_taints(node, taints)
            ready_count += int(ready)
            for taint in taints:
                if taint.get("key") == UNREACHABLE and taint.get("effect") == "NoExecute":
                    evict_nodes[name] = taint
        NODES_READY.set(ready_count)
        NODES_TOTAL.set(len(nodes))
        phases: dict[str, int] = {"Pending": 0, "Running": 0, "Succeeded": 0, "Failed": 0, "Unknown": 0}
        for pod in self.cluster.pods.items():
            phase = (pod.get("status") or {}).get("phase") or "Pending"
            phases[phase] = phases.get(phase, 0) + 1
            node_name = (pod.get("spec") or {}).get("nodeName")
            no_exec = evict_nodes.get(node_name or "")
            if no_exec is None or is_terminating(pod):
                continue
            due = eviction_due(pod, no_exec, cfg.eviction_timeout_s, cfg.time_scale)
            if due is not None and now >= due:
                meta = pod["metadata"]
                log.info("evicting %s/%s from unreachable node %s", meta.get("namespace"), meta["name"], node_name)
                await self.cluster.api.delete(api_path("", "v1", "pods", meta.get("namespace"), meta["name"]))
                self.cluster.pods.assume_deleted(meta.get("namespace", ""), meta["name"])
                EVICTIONS.inc()
        for phase, count in phases.items():
            PODS_BY_PHASE.labels(phase).set(count)

    async def run(self) -> None:
        """Monitor every node-monitor period forever."""
        period = max(self.cluster.config.scaled(self.cluster.config.node_monitor_s), 0.05)
        while True:
            try:
                await self.monitor_once()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001
                log.info("node lifecycle pass failed: %r", err)
            await asyncio.sleep(period)
