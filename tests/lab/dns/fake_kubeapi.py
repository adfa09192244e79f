"""A tiny in-test API server (fake) speaking Kubernetes list+watch JSON, and object builders.

The fake serves Services, Endpoints and ConfigMaps with resourceVersions, fieldSelector
``metadata.name=``, watch replay from a resourceVersion and 410 for compacted versions; it can be
stopped and restarted on the same port to cut the DNS pods off the API. Tests that need neither a
restart on the same port nor a forced 410 use the real API server instead.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

TOKEN = "test-token"
KINDS = {"services": "Service", "endpoints": "Endpoints", "configmaps": "ConfigMap"}


class FakeKubeApi:
    """List+watch for services/endpoints/configmaps, in memory (fake: the real one is a subprocess)."""

    def __init__(self) -> None:
        self.rv = 1
        self.objects: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
        self.events: list[tuple[int, str, str, dict[str, Any]]] = []
        self.compacted = 0
        self.port = 0
        self.requests = 0
        self.request_times: list[float] = []
        self.fail_next: list[tuple[int, dict[str, str]]] = []
        self._queues: set[asyncio.Queue[tuple[int, str, str, dict[str, Any]]]] = set()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen (on the previous port after a stop)."""
        app = web.Application()
        app.router.add_get("/api/v1/{resource}", self._handle)
        app.router.add_get("/api/v1/namespaces/{ns}/{resource}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop listening and cut every open watch."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            for q in list(self._queues):
                q.put_nowait((0, "", "CLOSE", {}))
            await runner.cleanup()

    def put(self, resource: str, obj: dict[str, Any]) -> None:
        """Create or replace an object (bumps the resourceVersion, notifies watchers)."""
        self.rv += 1
        obj = json.loads(json.dumps(obj))
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        key = f"{obj['metadata'].get('namespace', 'default')}/{obj['metadata']['name']}"
        kind = "MODIFIED" if key in self.objects[resource] else "ADDED"
        self.objects[resource][key] = obj
        self._emit(resource, kind, obj)

    def delete(self, resource: str, namespace: str, name: str) -> None:
        """Delete an object."""
        obj = self.objects[resource].pop(f"{namespace}/{name}")
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._emit(resource, "DELETED", obj)

    def compact(self) -> None:
        """Forget the event history: older resourceVersions now get 410 Gone."""
        self.compacted = self.rv
        self.events.clear()

    def _emit(self, resource: str, kind: str, obj: dict[str, Any]) -> None:
        event = (self.rv, resource, kind, obj)
        self.events.append(event)
        for q in self._queues:
            q.put_nowait(event)

    @staticmethod
    def _match(obj: dict[str, Any], ns: str | None, selector: str) -> bool:
        meta = obj["metadata"]
        if ns is not None and meta.get("namespace") != ns:
            return False
        return not selector or selector == f"metadata.name={meta['name']}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.request_times.append(time.monotonic())
        if self.fail_next:
            status, headers = self.fail_next.pop(0)
            return web.json_response({"kind": "Status", "code": status}, status=status, headers=headers)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        resource = request.match_info["resource"]
        ns = request.match_info.get("ns")
        selector = request.query.get("fieldSelector", "")
        if resource not in KINDS:
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        if request.query.get("watch") in ("true", "1"):
            return await self._watch(request, resource, ns, selector)
        items = [o for o in self.objects[resource].values() if self._match(o, ns, selector)]
        return web.json_response(
            {
                "kind": KINDS[resource] + "List",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self.rv)},
                "items": items,
            }
        )

    async def _watch(
        self, request: web.Request, resource: str, ns: str | None, sel: str
    ) -> web.StreamResponse:
        since = int(request.query.get("resourceVersion") or self.rv)
        resp = web.StreamResponse()
        resp.content_type = "application/json"
        await resp.prepare(request)
        if since < self.compacted:
            gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
            await resp.write(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
            return resp
        q: asyncio.Queue[tuple[int, str, str, dict[str, Any]]] = asyncio.Queue()
        for event in self.events:
            q.put_nowait(event)
        self._queues.add(q)
        try:
            while True:
                rv, res, kind, obj = await q.get()
                if kind == "CLOSE":
                    break
                if res == resource and rv > since and self._match(obj, ns, sel):
                    line = {"type": kind, "object": {"kind": KINDS[resource], "apiVersion": "v1", **obj}}
                    await resp.write(json.dumps(line).encode() + b"\n")
        finally:
            self._queues.discard(q)
        return resp


def service(name: str, ns: str = "default", cluster_ip: str = "10.96.0.20") -> dict[str, Any]:
    """A Service object."""
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "clusterIP": cluster_ip,
            "type": "ClusterIP",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        },
    }


def endpoints(
    name: str, ips: list[str], ns: str = "default", not_ready: list[str] | None = None
) -> dict[str, Any]:
    """An Endpoints object."""
    return {
        "metadata": {"name": name, "namespace": ns},
        "subsets": [
            {
                "addresses": [{"ip": ip} for ip in ips],
                "notReadyAddresses": [{"ip": ip} for ip in not_ready or []],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            }
        ],
    }


def corefile_cm(text: str, ns: str = "kube-system") -> dict[str, Any]:
    """The ``coredns`` ConfigMap (in kube-system unless told)."""
    return {"metadata": {"name": "coredns", "namespace": ns}, "data": {"Corefile": text}}
