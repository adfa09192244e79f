"""The garbage collector for pods: a pod whose controlling owner (a Deployment or DaemonSet) no longer
exists is deleted, as the real garbage collector does for dependents of a deleted owner.

The API server already cascades when an owner is deleted, but a controller that was creating pods at
that moment may still land a few with the dead owner's uid; nothing else would ever delete those.
Candidates come from the informers (the owner's DELETED event, pod events naming an unknown owner and a
periodic sweep); the owner's absence is confirmed with a live GET (404, or another uid under that
name) before the pod is deleted, so informer lag never deletes a pod whose owner is alive.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from prometheus_client import Counter

from lab.runtime.client import api_path
from lab.runtime.cluster import Cluster
from lab.runtime.errors import ApiStatusError
from lab.runtime.informer import Informer, Key, key_of
from lab.runtime.workqueue import WorkQueue

log = logging.getLogger(__name__)
Obj = dict[str, Any]
OWNER_KINDS = {"Deployment": "deployments", "DaemonSet": "daemonsets"}
SWEEP_S = 2.0
ORPHANS_DELETED = Counter("lab_gc_orphan_pods_deleted_total", "Pods deleted because their owner is gone")


def controller_ref(pod: Obj) -> Obj | None:
    """The controlling ownerReference of a pod, if it names a kind this collector handles."""
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") in OWNER_KINDS and ref.get("uid"):
            return dict(ref)
    return None


class GarbageCollector:
    """Deletes pods whose Deployment/DaemonSet owner no longer exists."""

    def __init__(self, cluster: Cluster, sweep_s: float = SWEEP_S) -> None:
        self.cluster = cluster
        self.sweep_s = sweep_s
        self.queue: WorkQueue[Key] = WorkQueue("garbage")
        self.by_owner: dict[str, set[Key]] = {}
        cluster.pods.add_handler(self._on_pod)
        cluster.deployments.add_handler(self._on_owner)
        cluster.daemonsets.add_handler(self._on_owner)

    def _informer(self, kind: str) -> Informer:
        return self.cluster.deployments if kind == "Deployment" else self.cluster.daemonsets

    def owner_alive(self, namespace: str, ref: Obj) -> bool:
        """Whether the informer holds the owner a reference names (same uid)."""
        owner = self._informer(str(ref["kind"])).get(namespace, str(ref.get("name", "")))
        return owner is not None and str(owner["metadata"].get("uid", "")) == str(ref["uid"])

    def _on_pod(self, etype: str, pod: Obj) -> None:
        ref = controller_ref(pod)
        if ref is None:
            return
        key, uid = key_of(pod), str(ref["uid"])
        if etype == "DELETED":
            keys = self.by_owner.get(uid)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.by_owner[uid]
            return
        self.by_owner.setdefault(uid, set()).add(key)
        if not self.owner_alive(key[0], ref):
            self.queue.add(key)

    def _on_owner(self, etype: str, owner: Obj) -> None:
        if etype == "DELETED":
            for key in list(self.by_owner.get(str(owner["metadata"].get("uid", "")), ())):
                self.queue.add(key)

    async def collect(self, key: Key) -> None:
        """Delete one pod if its owner is confirmed gone through the API."""
        pod = self.cluster.pods.get(*key)
        ref = controller_ref(pod) if pod is not None else None
        if pod is None or ref is None or self.owner_alive(key[0], ref):
            return
        path = api_path("apps", "v1", OWNER_KINDS[str(ref["kind"])], key[0], str(ref.get("name", "")))
        try:
            live = await self.cluster.api.get(path)
            if str(live["metadata"].get("uid", "")) == str(ref["uid"]):
                return
        except ApiStatusError as err:
            if err.code != 404:
                raise
        await self.cluster.api.delete(api_path("", "v1", "pods", key[0], key[1]))
        self.cluster.pods.assume_deleted(*key)
        ORPHANS_DELETED.inc()
        log.info("garbage collector: deleted pod %s/%s (owner %s %s is gone)", *key, ref["kind"], ref.get("name"))

    async def sweep(self) -> None:
        """Periodically queue every pod whose owner the informers do not hold."""
        while True:
            await asyncio.sleep(self.sweep_s)
            for pod in self.cluster.pods.items():
                ref = controller_ref(pod)
                if ref is not None and not self.owner_alive(key_of(pod)[0], ref):
                    self.queue.add(key_of(pod))

    async def run(self) -> None:
        """Collect forever."""
        await asyncio.gather(self.queue.run(self.collect, workers=4), self.sweep())
