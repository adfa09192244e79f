"""A small asyncio client for the Kubernetes REST API (what the runtime's components call).

Every call names the bearer token it uses, so each kubelet speaks as its own node identity and
API Priority and Fairness classifies it as a real cluster would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from lab.errors import ApiStatusError, WatchExpired

Obj = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
"""A kubelet's node-status patches: conditions merged by type, so others' conditions (GpuHealthy, ...) stay."""


def api_path(
    group: str,
    version: str,
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    sub: str | None = None,
) -> str:
    """The REST path of a collection, object or subresource."""
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{plural}"
    if name:
        base += f"/{name}"
        if sub:
            base += f"/{sub}"
    return base


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    value = resp.headers.get("Retry-After")
    try:
        return float(value) if value else None
    except ValueError:
        return None


class ApiClient:
    """Bearer-token REST calls against one API server over one aiohttp session."""

    def __init__(self, base_url: str, token: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.session = session

    async def request(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        params: dict[str, str] | None = None,
        token: str | None = None,
        content_type: str = "application/json",
        timeout: float | None = 30.0,
    ) -> Obj:
        """One call; returns the decoded body or raises ApiStatusError."""
        headers = {"Authorization": f"Bearer {token or self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body).encode()
        async with self.session.request(
            method,
            self.base_url + path,
            data=data,
            params=params,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            raw = await resp.read()
            if resp.status >= 400:
                message = raw.decode(errors="replace")[:500]
                raise ApiStatusError(resp.status, message, _retry_after(resp))
            result: Obj = json.loads(raw) if raw else {}
            return result

    async def get(self, path: str, token: str | None = None) -> Obj:
        """GET one object."""
        return await self.request("GET", path, token=token)

    async def create(self, path: str, obj: Obj, token: str | None = None) -> Obj:
        """POST an object into a collection."""
        return await self.request("POST", path, obj, token=token)

    async def replace(self, path: str, obj: Obj, token: str | None = None, timeout: float = 30.0) -> Obj:
        """PUT an object (optimistic concurrency through metadata.resourceVersion)."""
        return await self.request("PUT", path, obj, token=token, timeout=timeout)

    async def patch(self, path: str, patch: Obj, token: str | None = None) -> Obj:
        """JSON merge-patch an object or subresource."""
        return await self.request("PATCH", path, patch, token=token, content_type=MERGE_PATCH)

    async def delete(self, path: str, token: str | None = None, grace: int | None = None) -> Obj | None:
        """DELETE an object; None when it was already gone."""
        params = {"gracePeriodSeconds": str(grace)} if grace is not None else None
        try:
            return await self.request("DELETE", path, params=params, token=token)
        except ApiStatusError as err:
            if err.code == 404:
                return None
            raise

    async def list(self, path: str, params: dict[str, str] | None = None) -> tuple[list[Obj], str]:
        """LIST a collection; returns (items, resourceVersion)."""
        body = await self.request("GET", path, params=params, timeout=120.0)
        return list(body.get("items") or []), str(body.get("metadata", {}).get("resourceVersion", "0"))

    async def watch(
        self, path: str, resource_version: str, params: dict[str, str] | None = None, timeout_s: int = 300
    ) -> AsyncIterator[tuple[str, Obj]]:
        """Stream (type, object) watch events from a resourceVersion; raises WatchExpired on 410."""
        query = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_s),
            **(params or {}),
        }
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=timeout_s + 30)
        async with self.session.get(
            self.base_url + path, params=query, headers=headers, timeout=timeout
        ) as resp:
            if resp.status == 410:
                raise WatchExpired(path)
            if resp.status >= 400:
                raw = await resp.read()
                raise ApiStatusError(resp.status, raw.decode(errors="replace")[:500], _retry_after(resp))
            buf = b""
            async for chunk in resp.content.iter_any():
                buf += chunk
                if b"\n" not in chunk:
                    continue
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    etype, obj = event.get("type", ""), event.get("object") or {}
                    if etype == "ERROR":
                        if obj.get("code") == 410:
                            raise WatchExpired(path)
                        raise ApiStatusError(int(obj.get("code") or 500), str(obj.get("message")))
                    yield etype, obj
                    await asyncio.sleep(0)
