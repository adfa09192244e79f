"""Helpers for tests that drive the real (emulated) API server: a thin REST client and per-test namespaces."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from lab.apiserver.testing import RunningApiServer
from tests.lab.dns.fake_kubeapi import corefile_cm, endpoints, service


class KubeRest:
    """Create/replace/delete namespaced core/v1 objects with a bearer token."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})

    async def close(self) -> None:
        """Close the HTTP session."""
        await self.session.close()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        async with self.session.request(method, self.url + path, json=body) as resp:
            return resp.status, await resp.json(content_type=None)

    async def namespace(self, prefix: str = "t") -> str:
        """Create a fresh namespace and return its name."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        status, body = await self._call("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        assert status == 201, body
        return name

    async def put(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create ``obj`` or replace the existing object of that name."""
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        base = f"/api/v1/namespaces/{ns}/{resource}"
        status, body = await self._call("POST", base, obj)
        if status == 409:
            status, current = await self._call("GET", f"{base}/{name}")
            obj = {
                **obj,
                "metadata": {**obj["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]},
            }
            status, body = await self._call("PUT", f"{base}/{name}", obj)
        assert status in (200, 201), body
        return dict(body)

    async def delete(self, resource: str, ns: str, name: str) -> None:
        """Delete one object (404 tolerated)."""
        status, body = await self._call("DELETE", f"/api/v1/namespaces/{ns}/{resource}/{name}")
        assert status in (200, 202, 404), body

    async def seed(self, ns: str, corefile: str | None = None) -> None:
        """The standard test objects: `web` (ClusterIP 10.96.0.20) and headless `model` (two ready IPs)."""
        await self.put("services", service("web", ns=ns))
        await self.put("endpoints", endpoints("web", ["127.0.1.1"], ns=ns))
        await self.put("services", service("model", ns=ns, cluster_ip="None"))
        await self.put(
            "endpoints", endpoints("model", ["127.0.1.2", "127.0.1.3"], ns=ns, not_ready=["127.0.1.4"])
        )
        if corefile is not None:
            await self.put("configmaps", corefile_cm(corefile, ns=ns))


@dataclass
class Cluster:
    """A test's slice of a real API server: its namespace, a REST helper and the CoreDNS token."""

    api: RunningApiServer
    kube: KubeRest
    ns: str

    @property
    def url(self) -> str:
        """API server URL."""
        return self.api.url

    @property
    def token(self) -> str:
        """The kube-system/coredns service-account token."""
        return self.api.token_for("system:serviceaccount:kube-system:coredns")

    def env(self, **extra: str) -> dict[str, str]:
        """DNS pod env reading the Corefile from this namespace's `coredns` ConfigMap."""
        return {"COREFILE_CONFIGMAP": f"{self.ns}/coredns", **extra}

    def name(self, service: str) -> str:
        """The cluster DNS name of a service in this namespace."""
        return f"{service}.{self.ns}.svc.cluster.local"


async def make_cluster(api: RunningApiServer) -> Cluster:
    """A fresh namespace with `web` (ClusterIP 10.96.0.20) and headless `model` in it."""
    kube = KubeRest(api.url, api.admin_token)
    ns = await kube.namespace()
    await kube.seed(ns)
    return Cluster(api, kube, ns)
