"""The DaemonSet controller: one pod per eligible node, bound directly to it.

Eligibility follows the real controller: nodeSelector and required node affinity match, and every
NoSchedule/NoExecute taint is tolerated by the template's tolerations plus the ones the real
controller adds to every daemon pod (not-ready and unreachable NoExecute, the pressure taints and
``node.kubernetes.io/unschedulable:NoSchedule``, so daemon pods also land on cordoned nodes).
"""

from __future__ import annotations

from typing import Any

from lab.runtime.client import api_path
from lab.runtime.cluster import Cluster
from lab.runtime.controllers.deployment import BURST, HASH_LABEL, owner_still_there, slow_start
from lab.runtime.informer import Key, key_of
from lab.runtime.objects import (
    controller_uid,
    is_active_pod,
    label_selector_match,
    labels_match,
    owner_ref,
    pod_ready,
    template_hash,
    untolerated,
)
from lab.runtime.workqueue import WorkQueue

Obj = dict[str, Any]
DAEMON_TOLERATIONS: list[Obj] = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def daemon_tolerations(template_spec: Obj) -> list[Obj]:
    """The template's tolerations plus the daemon defaults it does not already carry."""
    own = list(template_spec.get("tolerations") or [])
    keys = {(t.get("key"), t.get("effect")) for t in own}
    return own + [t for t in DAEMON_TOLERATIONS if (t["key"], t["effect"]) not in keys]


def should_run(node: Obj, template_spec: Obj) -> bool:
    """Whether a daemon pod with this template belongs on this node."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    if not labels_match(template_spec.get("nodeSelector") or {}, labels):
        return False
    terms = (
        ((template_spec.get("affinity") or {}).get("nodeAffinity") or {})
        .get("requiredDuringSchedulingIgnoredDuringExecution", {})
        .get("nodeSelectorTerms")
    )
    if terms and not any(label_selector_match({"matchExpressions": t.get("matchExpressions")}, labels) for t in terms):
        return False
    taints = (node.get("spec") or {}).get("taints") or []
    return not untolerated(daemon_tolerations(template_spec), taints, ("NoSchedule", "NoExecute"))


class DaemonSetController:
    """Reconciles DaemonSets against nodes and the pods they own."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.queue: WorkQueue[Key] = WorkQueue("daemonset", min_interval=0.25)
        self.by_uid: dict[str, Key] = {}
        self.owned: dict[str, set[Key]] = {}
        cluster.daemonsets.add_handler(self._on_ds)
        cluster.pods.add_handler(self._on_pod)
        cluster.nodes.add_handler(self._on_node)

    def _on_ds(self, etype: str, ds: Obj) -> None:
        uid = str(ds["metadata"].get("uid", ""))
        if etype == "DELETED":
            self.by_uid.pop(uid, None)
        else:
            self.by_uid[uid] = key_of(ds)
            self.queue.add(key_of(ds))

    def _on_pod(self, etype: str, pod: Obj) -> None:
        uid = controller_uid(pod)
        if uid is None:
            return
        if etype == "DELETED":
            self.owned.get(uid, set()).discard(key_of(pod))
        else:
            self.owned.setdefault(uid, set()).add(key_of(pod))
        if uid in self.by_uid:
            self.queue.add(self.by_uid[uid])

    def _on_node(self, etype: str, node: Obj) -> None:
        for key in self.by_uid.values():
            self.queue.add(key)

    async def reconcile(self, key: Key) -> None:
        """Create/delete daemon pods and post status for one DaemonSet."""
        ds = self.cluster.daemonsets.get(*key)
        if ds is None:
            return
        ns = key[0]
        uid = str(ds["metadata"].get("uid", ""))
        template = (ds.get("spec") or {}).get("template") or {}
        tspec = template.get("spec") or {}
        thash = template_hash(template)
        by_node: dict[str, list[Obj]] = {}
        for pkey in list(self.owned.get(uid, ())):
            pod = self.cluster.pods.get(*pkey)
            if pod is not None and is_active_pod(pod):
                by_node.setdefault((pod.get("spec") or {}).get("nodeName") or "", []).append(pod)
        desired = ready = updated = scheduled = misscheduled = 0
        missing: list[str] = []
        for node in self.cluster.nodes.items():
            name = node["metadata"]["name"]
            pods = by_node.pop(name, [])
            if not should_run(node, tspec):
                misscheduled += len(pods)
                await self._delete(ns, pods)
                continue
            desired += 1
            current = [p for p in pods if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == thash]
            await self._delete(ns, [p for p in pods if not current or p is not current[0]])
            if not current:
                missing.append(name)
                continue
            scheduled += 1
            updated += 1
            ready += int(pod_ready(current[0]))
        for pods in by_node.values():
            await self._delete(ns, pods)

        async def alive() -> bool:  # a deleted DaemonSet stops creation mid-rollout
            return self.exists(key, uid) and await owner_still_there(self.cluster, "daemonsets", key, uid)

        await slow_start(missing[:BURST], lambda node: self._create(ns, ds, node, thash), proceed=alive)
        if len(missing) > BURST:
            self.queue.add(key)
        if not await alive():
            return
        status = {
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": scheduled,
            "updatedNumberScheduled": updated,
            "numberReady": ready,
            "numberAvailable": ready,
            "numberUnavailable": max(desired - ready, 0),
            "numberMisscheduled": misscheduled,
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        if any((ds.get("status") or {}).get(k) != v for k, v in status.items()):
            path = api_path("apps", "v1", "daemonsets", ns, key[1], "status")
            self.cluster.daemonsets.assume(await self.cluster.api.patch(path, {"status": status}))

    def exists(self, key: Key, uid: str) -> bool:
        """Whether the DaemonSet is still the one being reconciled (not deleted, not re-created)."""
        ds = self.cluster.daemonsets.get(*key)
        return ds is not None and str(ds["metadata"].get("uid", "")) == uid and uid in self.by_uid

    async def _create(self, ns: str, ds: Obj, node: str, thash: str) -> None:
        created = await self.cluster.api.create(api_path("", "v1", "pods", ns), self._pod(ds, node, thash))
        self.cluster.pods.assume(created)

    async def _delete(self, ns: str, pods: list[Obj]) -> None:
        for pod in pods:
            name = pod["metadata"]["name"]
            await self.cluster.api.delete(api_path("", "v1", "pods", ns, name))
            self.cluster.pods.assume_deleted(ns, name)

    def _pod(self, ds: Obj, node: str, thash: str) -> Obj:
        template = ds["spec"].get("template") or {}
        tmeta = template.get("metadata") or {}
        spec = dict(template.get("spec") or {})
        spec["tolerations"] = daemon_tolerations(spec)
        spec["nodeName"] = node
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": f"{ds['metadata']['name']}-",
                "labels": {**(tmeta.get("labels") or {}), HASH_LABEL: thash},
                "annotations": dict(tmeta.get("annotations") or {}),
                "ownerReferences": [owner_ref(ds, "DaemonSet", "apps/v1")],
            },
            "spec": spec,
        }

    async def run(self) -> None:
        """Reconcile forever."""
        await self.queue.run(self.reconcile, workers=1)
