"""A client-go-like reflector: LIST (``resourceVersion=0``) then WATCH one collection, keep a store, re-list on 410.

Like client-go, the LIST asks for ``resourceVersion=0``: the API server answers it from its watch cache, so
while that cache re-initialises after an API server restart the LIST gets 429 and the store cannot sync.

The store is never cleared when the API server goes away: the last listed state stays served,
which is what CoreDNS does (and what hid the 2024-12-11 outage).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import aiohttp

from lab.dns.errors import ApiError

log = logging.getLogger(__name__)
T = TypeVar("T")
Converter = Callable[[dict[str, Any]], T]
WATCH_TIMEOUT_S = 30
BACKOFF_MAX_S = 2.0


def object_key(obj: dict[str, Any]) -> str:
    """``namespace/name`` of a Kubernetes object (``name`` when cluster-scoped)."""
    meta = obj.get("metadata", {})
    ns = meta.get("namespace", "")
    return f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))


class Gone(Exception):
    """The watch's resourceVersion is too old (HTTP 410): the caller must re-list."""


class Informer(Generic[T]):
    """Mirror one API collection (``path``) into ``items`` keyed by ``namespace/name``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_url: str,
        path: str,
        convert: Converter[T],
        *,
        field_selector: str | None = None,
        accept: Callable[[dict[str, Any]], bool] | None = None,
        on_change: Callable[[], None] | None = None,
        on_reachable: Callable[[bool], None] | None = None,
    ) -> None:
        self.items: dict[str, T] = {}
        self.synced = asyncio.Event()
        self.resource_version = ""
        self.relists = 0
        self._session, self._url, self._path = session, api_url.rstrip("/"), path
        self._convert, self._selector, self._accept = convert, field_selector, accept
        self._on_change, self._on_reachable = on_change, on_reachable
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the list/watch loop in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer {self._path}")

    async def stop(self) -> None:
        """Stop the loop; the store keeps its content."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _reachable(self, value: bool) -> None:
        if self._on_reachable is not None:
            self._on_reachable(value)

    async def _run(self) -> None:
        backoff = 0.1
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                await self._watch()
                backoff = 0.1
            except Gone:
                need_list = True
            except ApiError as exc:
                self._reachable(exc.status < 500)
                delay = exc.retry_after if exc.retry_after is not None else backoff
                log.debug("informer %s: %s; retrying in %.2fs", self._path, exc, delay)
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
                self._reachable(False)
                log.debug("informer %s: %r; retrying in %.2fs", self._path, exc, backoff)
                await asyncio.sleep(backoff * (0.8 + 0.4 * random.random()))
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _params(self) -> dict[str, str]:
        return {"fieldSelector": self._selector} if self._selector else {}

    async def _check(self, resp: aiohttp.ClientResponse) -> None:
        if resp.status == 410:
            raise Gone()
        if resp.status != 200:
            text = (await resp.text())[:200]
            after = resp.headers.get("Retry-After")
            raise ApiError(resp.status, text, float(after) if after and after.isdigit() else None)

    async def _list(self) -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        params = self._params() | {"resourceVersion": "0"}  # like client-go: served by the watch cache
        async with self._session.get(self._url + self._path, params=params, timeout=timeout) as resp:
            await self._check(resp)
            body = await resp.json(content_type=None)
        self._reachable(True)
        fresh: dict[str, T] = {}
        for obj in body.get("items") or []:
            if self._accept is None or self._accept(obj):
                fresh[object_key(obj)] = self._convert(obj)
        self.items = fresh
        self.resource_version = str(body.get("metadata", {}).get("resourceVersion", ""))
        self.relists += 1
        self.synced.set()
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    async def _watch(self) -> None:
        params = self._params() | {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_TIMEOUT_S + random.randint(0, 5)),
        }
        if self.resource_version:
            params["resourceVersion"] = self.resource_version
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=WATCH_TIMEOUT_S + 15)
        async with self._session.get(self._url + self._path, params=params, timeout=timeout) as resp:
            await self._check(resp)
            self._reachable(True)
            async for raw in resp.content:
                line = raw.strip()
                if line:
                    self._apply(json.loads(line))

    def _apply(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone()
            raise ApiError(int(obj.get("code") or 500), str(obj.get("message", "watch error")))
        rv = obj.get("metadata", {}).get("resourceVersion")
        if rv:
            self.resource_version = str(rv)
        if kind == "BOOKMARK":
            return
        key = object_key(obj)
        if kind == "DELETED" or (self._accept is not None and not self._accept(obj)):
            if self.items.pop(key, None) is None:
                return
        elif kind in ("ADDED", "MODIFIED"):
            self.items[key] = self._convert(obj)
        else:
            return
        self._changed()
