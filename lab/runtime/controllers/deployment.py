"""The Deployment controller: owns pods directly (no ReplicaSet layer) with a pod-template-hash label.

Scales to spec.replicas, rolls out template changes with maxSurge/maxUnavailable (or Recreate),
and posts replicas/readyReplicas/availableReplicas/updatedReplicas/observedGeneration and the
Available/Progressing conditions.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from lab.runtime.client import api_path
from lab.runtime.cluster import Cluster
from lab.runtime.errors import ApiStatusError
from lab.runtime.informer import Key, key_of
from lab.runtime.objects import controller_uid, is_active_pod, now_time, owner_ref, pod_ready, template_hash
from lab.runtime.workqueue import WorkQueue

Obj = dict[str, Any]
HASH_LABEL = "pod-template-hash"
BURST = 500  # the real controller's burstReplicas: most pods created/deleted per sync
T = TypeVar("T")


def _int_or_percent(value: object, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        frac = float(value[:-1]) / 100 * total
        return math.ceil(frac) if round_up else math.floor(frac)
    return int(str(value)) if value is not None else 0


async def slow_start(
    items: list[T], action: Callable[[T], Awaitable[None]], limit: int = 64,
    proceed: Callable[[], Awaitable[bool]] | None = None,
) -> int:
    """Run action over items in batches of 1, 2, 4... (up to limit) concurrently, stopping at the first
    failing batch (the real ReplicaSet controller's slow start), then raise the first error.

    ``proceed`` is asked before every batch (e.g. "does the owner still exist?"); when it says no,
    the rest is skipped. Returns how many items were acted on."""
    done, batch = 0, 1
    while done < len(items):
        if proceed is not None and not await proceed():
            return done
        chunk = items[done : done + batch]
        results = await asyncio.gather(*(action(item) for item in chunk), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        done += len(chunk)
        batch = min(batch * 2, limit)
    return done


async def owner_still_there(cluster: Cluster, resource: str, key: Key, uid: str) -> bool:
    """Whether the apps/v1 owner at key still has this uid, by a live GET: the informers can lag its deletion
    by seconds under load, and pods created meanwhile would outlive the API server's cascade."""
    try:
        live = await cluster.api.get(api_path("apps", "v1", resource, key[0], key[1]))
    except ApiStatusError as err:
        if err.code == 404:
            return False
        raise
    return str(live["metadata"].get("uid", "")) == uid


def _deletion_rank(pod: Obj) -> tuple[bool, bool, str]:
    """Sort key: delete unscheduled, then unready, then newest pods first."""
    created = str(pod["metadata"].get("creationTimestamp", ""))
    inverted = "".join(chr(255 - ord(ch)) for ch in created)
    return (bool((pod.get("spec") or {}).get("nodeName")), pod_ready(pod), inverted)


def plan(replicas: int, strategy: Obj, new: list[Obj], old: list[Obj]) -> tuple[int, list[Obj]]:
    """How many new-template pods to create and which pods to delete now (pure)."""
    kind = strategy.get("type") or "RollingUpdate"
    ready_new = sum(1 for p in new if pod_ready(p))
    ready_old = sum(1 for p in old if pod_ready(p))
    delete: list[Obj] = []
    if len(new) > replicas:
        delete.extend(sorted(new, key=_deletion_rank)[: len(new) - replicas])
        gone = {id(p) for p in delete}
        new = [p for p in new if id(p) not in gone]
    if kind == "Recreate":
        if old:
            return 0, delete + old
        return max(replicas - len(new), 0), delete
    rolling = strategy.get("rollingUpdate") or {}
    surge = _int_or_percent(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = _int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    if not old:
        return max(replicas - len(new), 0), delete
    room = replicas + surge - len(new) - len(old)
    create = max(min(replicas - len(new), room), 0)
    removable = ready_new + ready_old - (replicas - unavailable)
    unready_old = [p for p in old if not pod_ready(p)]
    delete.extend(unready_old)
    ready_sorted = sorted((p for p in old if pod_ready(p)), key=_deletion_rank)
    delete.extend(ready_sorted[: max(removable, 0)])
    return create, delete


def _same_status(old: Obj, new: Obj) -> bool:
    """Whether posting new would change nothing but timestamps."""
    def counts(s: Obj) -> Obj:
        return {k: v for k, v in s.items() if k != "conditions"}

    def conds(s: Obj) -> list[tuple[str, str, str]]:
        return [(c.get("type"), c.get("status"), c.get("reason")) for c in s.get("conditions") or []]

    return counts(old) == counts(new) and conds(old) == conds(new)


class DeploymentController:
    """Reconciles Deployments against the pods they own."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.queue: WorkQueue[Key] = WorkQueue("deployment", min_interval=0.25)
        self.by_uid: dict[str, Key] = {}
        self.owned: dict[str, set[Key]] = {}
        cluster.deployments.add_handler(self._on_deployment)
        cluster.pods.add_handler(self._on_pod)

    def _on_deployment(self, etype: str, dep: Obj) -> None:
        key = key_of(dep)
        uid = str(dep["metadata"].get("uid", ""))
        if etype == "DELETED":
            self.by_uid.pop(uid, None)
        else:
            self.by_uid[uid] = key
            self.queue.add(key)

    def _on_pod(self, etype: str, pod: Obj) -> None:
        uid = controller_uid(pod)
        if uid is None:
            return
        key = key_of(pod)
        if etype == "DELETED":
            self.owned.get(uid, set()).discard(key)
        else:
            self.owned.setdefault(uid, set()).add(key)
        dep_key = self.by_uid.get(uid)
        if dep_key is not None:
            self.queue.add(dep_key)

    def exists(self, key: Key, uid: str) -> bool:
        """Whether the Deployment is still the one being reconciled (not deleted, not re-created)."""
        dep = self.cluster.deployments.get(*key)
        return dep is not None and str(dep["metadata"].get("uid", "")) == uid and uid in self.by_uid

    def _pods(self, uid: str) -> list[Obj]:
        pods = []
        for key in list(self.owned.get(uid, ())):
            pod = self.cluster.pods.get(*key)
            if pod is not None and is_active_pod(pod):
                pods.append(pod)
        return pods

    async def reconcile(self, key: Key) -> None:
        """Create/delete pods and post status for one Deployment."""
        dep = self.cluster.deployments.get(*key)
        if dep is None:
            return
        ns = key[0]
        spec, uid = dep.get("spec") or {}, str(dep["metadata"].get("uid", ""))
        replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        template = spec.get("template") or {}
        thash = template_hash(template)
        pods = self._pods(uid)
        new: list[Obj] = []
        old: list[Obj] = []
        for pod in pods:
            (new if (pod["metadata"].get("labels") or {}).get(HASH_LABEL) == thash else old).append(pod)
        create, delete = plan(replicas, spec.get("strategy") or {}, new, old)
        await slow_start(delete[:BURST], lambda pod: self._delete(ns, pod))

        async def alive() -> bool:  # a deleted owner stops creation mid-burst
            return self.exists(key, uid) and await owner_still_there(self.cluster, "deployments", key, uid)

        await slow_start([None] * min(create, BURST), lambda _: self._create(ns, dep, thash), proceed=alive)
        if not await alive():
            return
        await self._post_status(dep, replicas, thash)
        if create > BURST or len(delete) > BURST:
            self.queue.add(key)

    async def _delete(self, ns: str, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        await self.cluster.api.delete(api_path("", "v1", "pods", ns, name))
        self.cluster.pods.assume_deleted(ns, name)

    async def _create(self, ns: str, dep: Obj, thash: str) -> None:
        self.cluster.pods.assume(await self.cluster.api.create(api_path("", "v1", "pods", ns), self._pod(dep, thash)))

    def _pod(self, dep: Obj, thash: str) -> Obj:
        template = dep["spec"].get("template") or {}
        tmeta = template.get("metadata") or {}
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": f"{dep['metadata']['name']}-{thash}-",
                "labels": {**(tmeta.get("labels") or {}), HASH_LABEL: thash},
                "annotations": dict(tmeta.get("annotations") or {}),
                "ownerReferences": [owner_ref(dep, "Deployment", "apps/v1")],
            },
            "spec": dict(template.get("spec") or {}),
        }

    async def _post_status(self, dep: Obj, replicas: int, thash: str) -> None:
        pods = self._pods(str(dep["metadata"].get("uid", "")))
        ready = sum(1 for p in pods if pod_ready(p))
        updated = sum(1 for p in pods if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == thash)
        rolling = ((dep["spec"].get("strategy") or {}).get("rollingUpdate")) or {}
        max_unavail = _int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, False)
        available = ready >= replicas - max_unavail
        old = dep.get("status") or {}
        prev = {c.get("type"): c for c in old.get("conditions") or []}
        now = now_time()

        def cond(ctype: str, ok: bool, reason: str, message: str) -> Obj:
            status = "True" if ok else "False"
            before = prev.get(ctype) or {}
            since = before.get("lastTransitionTime") if before.get("status") == status else now
            return {"type": ctype, "status": status, "reason": reason, "message": message,
                    "lastTransitionTime": since, "lastUpdateTime": before.get("lastUpdateTime", since)
                    if before.get("status") == status and before.get("reason") == reason else now}

        status = {
            "observedGeneration": dep["metadata"].get("generation", 1),
            "replicas": len(pods),
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(replicas - ready, 0),
            "conditions": [
                cond("Available", available,
                     "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                     "Deployment has minimum availability." if available
                     else "Deployment does not have minimum availability."),
                cond("Progressing", True,
                     "NewReplicaSetAvailable" if updated == replicas == ready else "ReplicaSetUpdated",
                     f'Deployment "{dep["metadata"]["name"]}" has {updated}/{replicas} updated pods.'),
            ],
        }
        if _same_status(old, status):
            return
        ns, name = key_of(dep)
        path = api_path("apps", "v1", "deployments", ns, name, "status")
        self.cluster.deployments.assume(await self.cluster.api.patch(path, {"status": status}))

    async def run(self) -> None:
        """Reconcile forever."""
        await self.queue.run(self.reconcile, workers=2)
