"""List+watch caches of API collections (informers) shared by every component of the runtime.

One informer per resource serves all kubelets and controllers: a LIST, then a WATCH from its
resourceVersion, a re-LIST (with a synthetic diff) on 410 Expired, on 429 (the API server's watch cache is
re-initialising after a restart) or a broken stream. The LISTs are quorum reads (no resourceVersion), which
the API server serves from storage even while its watch cache initialises: the lab's own kubelets and
controllers keep working between OOM kills of the API server, where real reflectors (resourceVersion=0)
would be turned away too.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Callable

from lab.errors import ApiStatusError, WatchExpired
from lab.runtime.client import ApiClient, Obj

REFUSED_RETRY_S = 0.2


def _refused(err: BaseException) -> bool:
    """The connection was refused: nothing listens (the API server is restarting)."""
    return isinstance(err, OSError) and (
        err.errno == errno.ECONNREFUSED or isinstance(getattr(err, "os_error", None), ConnectionRefusedError))

log = logging.getLogger(__name__)

Key = tuple[str, str]
Handler = Callable[[str, Obj], None]
TOMBSTONE_S = 30.0


def key_of(obj: Obj) -> Key:
    """(namespace, name) of an object."""
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


def _rv(obj: Obj) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class Informer:
    """A local cache of one collection kept current by list+watch; calls handlers on every change."""

    def __init__(self, client: ApiClient, path: str, params: dict[str, str] | None = None) -> None:
        self.client = client
        self.path = path
        self.params = params or {}
        self.store: dict[Key, Obj] = {}
        self.handlers: list[Handler] = []
        self.synced = asyncio.Event()
        self._tombstones: dict[Key, float] = {}

    def add_handler(self, handler: Handler) -> None:
        """Call handler(event_type, obj) on ADDED/MODIFIED/DELETED."""
        self.handlers.append(handler)

    def get(self, namespace: str, name: str) -> Obj | None:
        """The cached object, if any."""
        return self.store.get((namespace, name))

    def items(self) -> list[Obj]:
        """A snapshot of all cached objects."""
        return list(self.store.values())

    def assume(self, obj: Obj) -> None:
        """Record an object this process just wrote, before its watch event arrives."""
        key = key_of(obj)
        old = self.store.get(key)
        if old is None or _rv(obj) >= _rv(old):
            self._apply("MODIFIED" if old else "ADDED", obj)

    def assume_deleted(self, namespace: str, name: str) -> None:
        """Record a deletion this process just made; late updates of the object are ignored."""
        key = (namespace, name)
        self._tombstones[key] = time.monotonic() + TOMBSTONE_S
        obj = self.store.get(key)
        if obj is not None:
            self._apply("DELETED", obj)

    def _apply(self, etype: str, obj: Obj) -> None:
        key = key_of(obj)
        if etype == "DELETED":
            self._tombstones.pop(key, None)
            if self.store.pop(key, None) is None:
                return
        else:
            stone = self._tombstones.get(key)
            if stone is not None:
                if time.monotonic() < stone:
                    return
                del self._tombstones[key]
            self.store[key] = obj
        for handler in self.handlers:
            try:
                handler(etype, obj)
            except Exception:  # a broken handler must not stop the informer
                log.exception("informer handler failed for %s", self.path)

    async def _relist(self) -> str:
        items, rv = await self.client.list(self.path, self.params)
        fresh = {key_of(o): o for o in items}
        for key, old in list(self.store.items()):
            if key not in fresh:
                self._apply("DELETED", old)
        for key, obj in fresh.items():
            current = self.store.get(key)
            if current is None:
                self._apply("ADDED", obj)
            elif _rv(current) != _rv(obj):
                self._apply("MODIFIED", obj)
        self.synced.set()
        return rv

    async def run(self) -> None:
        """List and watch forever (until cancelled)."""
        backoff = 0.2
        rv: str | None = None
        while True:
            listed = False
            try:
                if rv is None:
                    rv = await self._relist()
                    listed = True
                async for etype, obj in self.client.watch(self.path, rv, self.params):
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if etype in ("ADDED", "MODIFIED", "DELETED"):
                        self._apply(etype, obj)
                backoff = 0.2
            except WatchExpired:
                rv = None
            except (TimeoutError, ApiStatusError, OSError, ValueError) as err:
                log.info("watch %s broke (%s); re-listing", self.path, err)
                if isinstance(err, ApiStatusError) and err.code in (410, 429):
                    rv = None  # expired, or the watch cache is re-initialising: a quorum LIST still works
                    if err.code == 429 and not listed:
                        continue  # the server is up right now (perhaps briefly, between OOM kills): list at once
                if _refused(err):
                    await asyncio.sleep(REFUSED_RETRY_S)  # nothing listens (restarting): be first back in
                    continue
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
            except Exception as err:  # noqa: BLE001  # aiohttp raises a family of client errors; keep watching
                log.info("watch %s failed (%r); re-listing", self.path, err)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                rv = None
