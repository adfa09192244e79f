"""The endpoints controller: one Endpoints object per selector Service, from the pods it selects.

Ready pods go to ``addresses``, unready ones to ``notReadyAddresses`` (unless the Service
publishes not-ready addresses); named target ports resolve through the pods' container ports.
"""

from __future__ import annotations

from typing import Any

from lab.runtime.client import api_path
from lab.runtime.cluster import Cluster
from lab.runtime.errors import ApiStatusError
from lab.runtime.informer import Key, key_of
from lab.runtime.objects import is_terminating, labels_match, pod_ready
from lab.runtime.workqueue import WorkQueue

Obj = dict[str, Any]


def _target_port(port: Obj, pod: Obj) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for cport in container.get("ports") or []:
            if cport.get("name") == target:
                return int(cport["containerPort"])
    return None


def build_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    """The Endpoints subsets for a Service given candidate pods in its namespace (pure)."""
    spec = service.get("spec") or {}
    selector = spec.get("selector") or {}
    publish_unready = bool(spec.get("publishNotReadyAddresses"))
    groups: dict[tuple[tuple[str, int, str], ...], Obj] = {}
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        meta, status = pod["metadata"], pod.get("status") or {}
        if is_terminating(pod) or not status.get("podIP") or status.get("phase") in ("Succeeded", "Failed"):
            continue
        if not labels_match(selector, meta.get("labels") or {}):
            continue
        ports = []
        for port in spec.get("ports") or []:
            number = _target_port(port, pod)
            if number is not None:
                ports.append((port.get("name", ""), number, port.get("protocol", "TCP")))
        sig = tuple(ports)
        subset = groups.setdefault(sig, {"addresses": [], "notReadyAddresses": [], "ports": [
            {**({"name": n} if n else {}), "port": num, "protocol": proto} for n, num, proto in ports
        ]})
        address = {
            "ip": status["podIP"],
            "nodeName": (pod.get("spec") or {}).get("nodeName", ""),
            "targetRef": {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta["name"],
                          "uid": meta.get("uid", "")},
        }
        ready = pod_ready(pod) or publish_unready
        subset["addresses" if ready else "notReadyAddresses"].append(address)
    subsets = []
    for subset in groups.values():
        subset = {k: v for k, v in subset.items() if v}
        if subset.get("addresses") or subset.get("notReadyAddresses"):
            subsets.append(subset)
    return subsets


class EndpointsController:
    """Keeps Endpoints in step with Services and pod readiness."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.queue: WorkQueue[Key] = WorkQueue("endpoints", min_interval=0.05)
        cluster.services.add_handler(lambda etype, svc: self.queue.add(key_of(svc)))
        cluster.pods.add_handler(self._on_pod)
        self._by_ns: dict[str, set[Key]] = {}
        cluster.pods.add_handler(self._index)

    def _index(self, etype: str, pod: Obj) -> None:
        key = key_of(pod)
        if etype == "DELETED":
            self._by_ns.get(key[0], set()).discard(key)
        else:
            self._by_ns.setdefault(key[0], set()).add(key)

    def _on_pod(self, etype: str, pod: Obj) -> None:
        ns = key_of(pod)[0]
        labels = pod["metadata"].get("labels") or {}
        for svc in self.cluster.services.items():
            if key_of(svc)[0] != ns:
                continue
            selector = (svc.get("spec") or {}).get("selector")
            if selector and labels_match(selector, labels):
                self.queue.add(key_of(svc))

    async def reconcile(self, key: Key) -> None:
        """Write one Service's Endpoints if it changed."""
        ns, name = key
        svc = self.cluster.services.get(ns, name)
        path = api_path("", "v1", "endpoints", ns, name)
        if svc is None or not (svc.get("spec") or {}).get("selector"):
            return
        pods = [p for k in list(self._by_ns.get(ns, ())) if (p := self.cluster.pods.get(*k)) is not None]
        subsets = build_subsets(svc, pods)
        current = self.cluster.endpoints.get(ns, name)
        if current is not None and (current.get("subsets") or []) == subsets:
            return
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": name, "namespace": ns, "labels": dict(svc["metadata"].get("labels") or {})},
            "subsets": subsets,
        }
        if current is None:
            try:
                self.cluster.endpoints.assume(await self.cluster.api.create(api_path("", "v1", "endpoints", ns), body))
                return
            except ApiStatusError as err:
                if err.code != 409:
                    raise
                current = await self.cluster.api.get(path)
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        self.cluster.endpoints.assume(await self.cluster.api.replace(path, body))

    async def run(self) -> None:
        """Reconcile forever."""
        await self.queue.run(self.reconcile, workers=2)
