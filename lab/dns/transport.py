"""UDP and TCP listeners that feed packets to a ``DnsEngine`` (swappable on reload)."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Awaitable, Callable
from typing import cast

from lab.dns.server import DnsEngine, Reply


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, engine: Callable[[], DnsEngine]) -> None:
        self._engine = engine
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self._engine().handle(data, "udp")
        if not isinstance(reply, Reply):
            task = asyncio.get_running_loop().create_task(self._later(reply, addr))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)
            return
        self._reply(reply, addr)

    async def _later(self, reply: Awaitable[Reply], addr: tuple[str, int]) -> None:
        self._reply(await reply, addr)

    def _reply(self, reply: Reply, addr: tuple[str, int]) -> None:
        if reply.data is None or self.transport is None:
            return
        if reply.delay_s > 0:
            asyncio.get_running_loop().call_later(reply.delay_s, self._send, reply.data, addr)
        else:
            self.transport.sendto(reply.data, addr)

    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)


class DnsListener:
    """One UDP socket and one TCP socket on (host, port) answering with the current engine."""

    def __init__(self, host: str, port: int, engine: Callable[[], DnsEngine]) -> None:
        self.host, self.port = host, port
        self._engine = engine
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_proto: _Udp | None = None
        self._tcp: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind both sockets (port 0 picks a free UDP port and reuses it for TCP)."""
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            lambda: _Udp(self._engine), local_addr=(self.host, self.port)
        )
        self._udp, self._udp_proto = transport, proto
        self.port = int(transport.get_extra_info("sockname")[1])
        try:
            self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port, reuse_address=True)
        except OSError:
            transport.close()
            self._udp = None
            raise

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            while True:
                header = await reader.readexactly(2)
                data = await reader.readexactly(struct.unpack("!H", header)[0])
                reply = await self._engine().answer(data, "tcp")
                if reply.delay_s > 0:
                    await asyncio.sleep(reply.delay_s)
                if reply.data is None:
                    continue
                writer.write(struct.pack("!H", len(reply.data)) + reply.data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def stop(self) -> None:
        """Close both sockets and every open TCP connection; idempotent."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._udp_proto is not None:
            for task in list(self._udp_proto.pending):
                task.cancel()
            await asyncio.gather(*self._udp_proto.pending, return_exceptions=True)
            self._udp_proto = None
        if self._tcp is not None:
            self._tcp.close()
            tcp, self._tcp = self._tcp, None
            for task in list(self._conns):
                task.cancel()
            await asyncio.gather(*self._conns, return_exceptions=True)
            await tcp.wait_closed()
