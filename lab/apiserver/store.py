"""In-memory object storage: one table per resource, a global resourceVersion and watch history.

Objects are plain JSON dicts. Stored dicts are never mutated in place: every write stores a new
dict, so a reader may hold one while a writer replaces it. Each write appends a ``WatchEvent`` to a
bounded history ring (``history`` events); watching from a resourceVersion older than the ring
answers 410 Expired like the real watch cache.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from lab.apiserver import errors
from lab.apiserver.resources import RESOURCES, Resource

Obj = dict[str, Any]
_encode = msgspec.json.Encoder().encode


@dataclass
class WatchEvent:
    """One change: type ADDED/MODIFIED/DELETED, the new object (or last state) and the old one."""

    type: str
    rv: int
    resource: str
    obj: Obj
    old: Obj | None
    _encoded: dict[str, bytes] = field(default_factory=dict)

    def encoded(self, kind: str | None = None) -> bytes:
        """The JSON line for this event, encoded once and shared between watchers."""
        etype = kind or self.type
        cached = self._encoded.get(etype)
        if cached is None:
            cached = _encode({"type": etype, "object": self.obj}) + b"\n"
            self._encoded[etype] = cached
        return cached


@dataclass(eq=False)
class Watcher:
    """A live watch: which resource and namespace it follows and where its events go."""

    resource: str
    namespace: str | None
    queue: asyncio.Queue[WatchEvent | None]


class Table:
    """All objects of one resource, keyed by namespace then name."""

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self.by_ns: dict[str, dict[str, Obj]] = {}
        self.count = 0

    def get(self, namespace: str, name: str) -> Obj | None:
        """The stored object, or None."""
        names = self.by_ns.get(namespace)
        return None if names is None else names.get(name)

    def put(self, namespace: str, name: str, obj: Obj) -> None:
        """Store (insert or replace) an object."""
        names = self.by_ns.setdefault(namespace, {})
        if name not in names:
            self.count += 1
        names[name] = obj

    def remove(self, namespace: str, name: str) -> Obj | None:
        """Remove and return an object."""
        names = self.by_ns.get(namespace)
        if names is None or name not in names:
            return None
        self.count -= 1
        obj = names.pop(name)
        if not names:
            del self.by_ns[namespace]
        return obj

    def size(self, namespace: str | None) -> int:
        """How many objects live in a namespace (or in all, for None)."""
        if namespace is None:
            return self.count
        return len(self.by_ns.get(namespace, ()))

    def iter_sorted(self, namespace: str | None) -> Iterator[Obj]:
        """Objects in (namespace, name) order, the order the real API lists in."""
        if namespace is not None:
            names = self.by_ns.get(namespace, {})
            for name in sorted(names):
                yield names[name]
            return
        for ns in sorted(self.by_ns):
            names = self.by_ns[ns]
            for name in sorted(names):
                yield names[name]


class Store:
    """Every resource's table, the resourceVersion counter, history and watchers."""

    def __init__(self, history: int = 10_000) -> None:
        self.tables: dict[str, Table] = {r.key: Table(r) for r in RESOURCES}
        self.rv = 1
        self.history: deque[WatchEvent] = deque(maxlen=history)
        self.compacted_rv = 0
        self.watchers: dict[str, set[Watcher]] = {}
        self.listeners: list[Callable[[WatchEvent], None]] = []
        self.generation: dict[str, int] = {}

    def next_rv(self) -> int:
        """Allocate the next resourceVersion."""
        self.rv += 1
        return self.rv

    def table(self, resource: Resource) -> Table:
        """The table for a resource."""
        return self.tables[resource.key]

    def record(self, etype: str, resource: Resource, obj: Obj, old: Obj | None, rv: int) -> None:
        """Append an event to history and hand it to watchers and listeners."""
        event = WatchEvent(etype, rv, resource.key, obj, old)
        if len(self.history) == self.history.maxlen:
            self.compacted_rv = self.history[0].rv
        self.history.append(event)
        self.generation[resource.key] = self.generation.get(resource.key, 0) + 1
        for watcher in self.watchers.get(resource.key, ()):
            ns = watcher.namespace
            if ns is None or ns == obj.get("metadata", {}).get("namespace"):
                watcher.queue.put_nowait(event)
        for listener in self.listeners:
            listener(event)

    def events_since(self, resource: Resource, rv: int) -> list[WatchEvent]:
        """History events of a resource after rv; 410 Expired if rv is older than the ring."""
        if rv < self.compacted_rv:
            raise errors.expired(f"too old resource version: {rv} ({self.compacted_rv})")
        key = resource.key
        out: list[WatchEvent] = []
        for event in reversed(self.history):
            if event.rv <= rv:
                break
            if event.resource == key:
                out.append(event)
        out.reverse()
        return out

    def add_watcher(self, watcher: Watcher) -> None:
        """Register a watcher so it gets new events."""
        self.watchers.setdefault(watcher.resource, set()).add(watcher)

    def remove_watcher(self, watcher: Watcher) -> None:
        """Unregister a watcher."""
        self.watchers.get(watcher.resource, set()).discard(watcher)

    def close_watchers(self) -> None:
        """Tell every watcher to finish (server shutdown)."""
        for watchers in self.watchers.values():
            for watcher in watchers:
                watcher.queue.put_nowait(None)
