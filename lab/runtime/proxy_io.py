"""The proxy's sockets: a TCP front that splices connections and a UDP front with per-client flows."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any, Protocol, cast

IDLE_FLOW_S = 30.0
MAX_FLOWS = 4096


class CounterLike(Protocol):
    """The part of a prometheus Counter the fronts use."""

    def inc(self, amount: float = 1) -> None:
        """Add to the counter."""


class Backends:
    """A round-robin choice over a port's current ready backends."""

    def __init__(self) -> None:
        self.items: list[tuple[str, int]] = []
        self._cycle: itertools.cycle[tuple[str, int]] = itertools.cycle([])

    def set(self, items: list[tuple[str, int]]) -> None:
        """Replace the backend list."""
        if items != self.items:
            self.items = items
            self._cycle = itertools.cycle(items)

    def pick(self) -> tuple[str, int] | None:
        """The next backend, or None when there is none."""
        return next(self._cycle) if self.items else None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


class TcpFront:
    """Listens on ip:port and splices each connection to a backend."""

    def __init__(self, ip: str, port: int, backends: Backends, forwarded: CounterLike) -> None:
        self.ip, self.port, self.backends, self.forwarded = ip, port, backends, forwarded
        self.server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def open(self) -> None:
        """Start listening."""
        self.server = await asyncio.start_server(self._handle, self.ip, self.port, reuse_address=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            for _ in range(max(len(self.backends.items), 1)):
                backend = self.backends.pick()
                if backend is None:
                    break
                try:
                    up_reader, up_writer = await asyncio.open_connection(*backend)
                except OSError:
                    continue
                self.forwarded.inc()
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
                return
            writer.close()
        except asyncio.CancelledError:
            # close() cut the connection (both pipes closed their writers): ending quietly here, since asyncio
            # logs a cancelled connection handler as an "Exception in callback" with its traceback
            writer.close()
        finally:
            if task is not None:
                self._tasks.discard(task)

    def close(self) -> None:
        """Stop listening and cut open connections."""
        if self.server is not None:
            self.server.close()
            self.server = None
        for task in list(self._tasks):
            task.cancel()


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, front: UdpFront, client: tuple[str, int]) -> None:
        self.front, self.client = front, client
        self.transport: asyncio.DatagramTransport | None = None
        self.last = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.last = time.monotonic()
        if self.front.transport is not None:
            self.front.transport.sendto(data, self.client)

    def error_received(self, exc: Exception) -> None:
        """ICMP errors from the backend are ignored (the client times out)."""


class UdpFront(asyncio.DatagramProtocol):
    """Listens on ip:port; each client address is a flow stuck to one backend while it is used."""

    def __init__(
        self, ip: str, port: int, backends: Backends, forwarded: CounterLike, dropped: CounterLike
    ) -> None:
        self.ip, self.port, self.backends = ip, port, backends
        self.forwarded, self.dropped = forwarded, dropped
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[tuple[str, int], tuple[tuple[str, int], _Upstream]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        """Start listening."""
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(self.ip, self.port), reuse_port=False)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        flow = self.flows.get(addr)
        if flow is not None and (flow[0] not in self.backends.items or flow[1].transport is None):
            self._drop_flow(addr)
            flow = None
        if flow is not None and flow[1].transport is not None:
            flow[1].last = time.monotonic()
            flow[1].transport.sendto(data)
            self.forwarded.inc()
            return
        backend = self.backends.pick()
        if backend is None:
            self.dropped.inc()
            return
        task = asyncio.get_running_loop().create_task(self._new_flow(addr, backend, data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _new_flow(self, addr: tuple[str, int], backend: tuple[str, int], data: bytes) -> None:
        self._expire()
        loop = asyncio.get_running_loop()
        try:
            transport, upstream = await loop.create_datagram_endpoint(
                lambda: _Upstream(self, addr), remote_addr=backend
            )
        except OSError:
            self.dropped.inc()
            return
        if self.transport is None:
            transport.close()
            return
        self.flows[addr] = (backend, upstream)
        transport.sendto(data)
        self.forwarded.inc()

    def _drop_flow(self, addr: tuple[str, int]) -> None:
        flow = self.flows.pop(addr, None)
        if flow is not None and flow[1].transport is not None:
            flow[1].transport.close()

    def _expire(self) -> None:
        now = time.monotonic()
        stale = [a for a, (_, up) in self.flows.items() if now - up.last > IDLE_FLOW_S]
        if len(self.flows) - len(stale) >= MAX_FLOWS:
            stale = list(self.flows)[: len(self.flows) // 2]
        for addr in stale:
            self._drop_flow(addr)

    def close(self) -> None:
        """Stop listening and drop every flow."""
        for addr in list(self.flows):
            self._drop_flow(addr)
        for task in list(self._tasks):
            task.cancel()
        if self.transport is not None:
            self.transport.close()
            self.transport = None
