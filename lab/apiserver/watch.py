"""WATCH: a chunked stream of JSON lines {"type", "object"}, like the real server's watch.

No resourceVersion (or "0", or sendInitialEvents=true) starts with ADDED events for the current
objects; a resourceVersion replays history after it, or sends one ERROR event with a 410 Expired
Status when it is older than the history ring. Selector changes turn MODIFIED into ADDED/DELETED as
the real server does. BOOKMARK events come every ``bookmark_interval`` when allowed. The APF seat
is held only while the initial events are written.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from aiohttp import web

from lab.apiserver import errors, selectors
from lab.apiserver.apf_match import RequestInfo
from lab.apiserver.resources import Resource
from lab.apiserver.server import Server, encode
from lab.apiserver.store import Obj, Watcher, WatchEvent

DEFAULT_TIMEOUT = 1800.0
_BATCH = 256 * 1024


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


def _translate(event: WatchEvent, pred: selectors.Predicate | None) -> str | None:
    """The event type this watcher sees (None: skip), given its selectors."""
    if pred is None:
        return event.type
    now = pred(event.obj)
    if event.type != "MODIFIED" or event.old is None:
        return event.type if now else None
    before = pred(event.old)
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    if before:
        return "DELETED"
    return None


async def serve(
    server: Server, request: web.Request, info: RequestInfo, resource: Resource
) -> web.StreamResponse:
    """Stream watch events until the timeout, the client leaving, or shutdown."""
    query = request.query
    pred = selectors.from_query(query)
    if info.name:  # watching one object by URL is a watch with fieldSelector metadata.name
        name = info.name
        pred = selectors.combine(pred, lambda obj: obj["metadata"].get("name") == name)
    namespace = info.namespace if resource.namespaced and info.namespace else None
    rv_text = query.get("resourceVersion", "")
    timeout = float(query.get("timeoutSeconds") or DEFAULT_TIMEOUT * (1 + random.random()))
    bookmarks = _truthy(query.get("allowWatchBookmarks"))
    initial_end = _truthy(query.get("sendInitialEvents"))
    watcher = Watcher(resource.key, namespace, asyncio.Queue())
    store = server.store
    response = web.StreamResponse(
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    )
    error: errors.ApiError | None = None
    backlog: list[bytes] = []
    try:
        rv = int(rv_text) if rv_text else 0
    except ValueError:
        raise errors.bad_request(f"invalid resource version: {rv_text!r}") from None
    store.add_watcher(watcher)
    try:
        if rv == 0 or initial_end:
            for obj in store.table(resource).iter_sorted(namespace):
                if pred is None or pred(obj):
                    backlog.append(encode({"type": "ADDED", "object": obj}) + b"\n")
            if initial_end and bookmarks:
                backlog.append(_bookmark(resource, store.rv, initial=True))
        else:
            try:
                for event in store.events_since(resource, rv):
                    if namespace is not None and event.obj["metadata"].get("namespace") != namespace:
                        continue
                    etype = _translate(event, pred)
                    if etype is not None:
                        backlog.append(event.encoded(etype))
            except errors.ApiError as exc:
                error = exc
        response.headers.update(request.get("apf_headers") or {})
        await response.prepare(request)
        if error is not None:
            await response.write(encode({"type": "ERROR", "object": error.status()}) + b"\n")
            return response
        await _write_batched(response, backlog)
        backlog = []
        ticket = request.get("apf_ticket")
        if ticket is not None:
            server.flow.release(ticket)
        await _stream(server, response, watcher, resource, pred, timeout, bookmarks)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        store.remove_watcher(watcher)
    return response


async def _write_batched(response: web.StreamResponse, lines: list[bytes]) -> None:
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        chunk.append(line)
        size += len(line)
        if size >= _BATCH:
            await response.write(b"".join(chunk))
            chunk, size = [], 0
    if chunk:
        await response.write(b"".join(chunk))


def _bookmark(resource: Resource, rv: int, initial: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj: Obj = {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": meta}
    return encode({"type": "BOOKMARK", "object": obj}) + b"\n"


async def _stream(
    server: Server,
    response: web.StreamResponse,
    watcher: Watcher,
    resource: Resource,
    pred: selectors.Predicate | None,
    timeout: float,
    bookmarks: bool,
) -> None:
    deadline = time.monotonic() + timeout
    interval = server.config.bookmark_interval
    next_bookmark = time.monotonic() + interval
    while True:
        now = time.monotonic()
        if now >= deadline:
            return
        wait = deadline - now
        if bookmarks:
            wait = min(wait, max(0.0, next_bookmark - now))
        try:
            event = await asyncio.wait_for(watcher.queue.get(), wait)
        except TimeoutError:
            if bookmarks and time.monotonic() >= next_bookmark:
                await response.write(_bookmark(resource, server.store.rv))
                next_bookmark = time.monotonic() + interval
            continue
        if event is None:
            return
        lines: list[bytes] = []
        for ev in _drain(watcher, event):
            if ev is None:
                if lines:
                    await response.write(b"".join(lines))
                return
            etype = _translate(ev, pred)
            if etype is not None:
                lines.append(ev.encoded(etype))
        if lines:
            await response.write(b"".join(lines))


def _drain(watcher: Watcher, first: WatchEvent) -> list[WatchEvent | None]:
    events: list[WatchEvent | None] = [first]
    while not watcher.queue.empty():
        events.append(watcher.queue.get_nowait())
    return events
