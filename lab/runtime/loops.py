"""The event loops the runtime runs on: the standard library's by default, uvloop when asked.

The runtime's main loop and its lease thread's loop run on asyncio's own selector loop unless ``--event-loop
uvloop`` is given. uvloop (libuv) aborts the whole process on an epoll error it does not expect, silently and
with no Python exception: stop 27 and its CI saw the runtime die with ``Fatal Python error: Aborted``, each
time as an OOM-killed API server reset hundreds of its connections at once in the incident replay's LIST
storm, and a dead runtime takes every real node and its pods with it. The standard loop raises instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Literal

EventLoopKind = Literal["asyncio", "uvloop"]
KINDS: tuple[EventLoopKind, ...] = ("asyncio", "uvloop")


def new_event_loop(kind: EventLoopKind) -> asyncio.AbstractEventLoop:
    """A fresh event loop of the given kind."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, None], kind: EventLoopKind) -> None:
    """Run ``main`` to completion on a fresh loop of the given kind (as ``asyncio.run``)."""
    with asyncio.Runner(loop_factory=lambda: new_event_loop(kind)) as runner:
        runner.run(main)
