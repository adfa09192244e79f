"""Tests for lab.workload.resolver: client-side caching of real DNS answers (the real CoreDNS's) for their TTL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from dnslib import QTYPE, RR, A, DNSRecord  # type: ignore[import-untyped]

from lab.workload.errors import DnsLookupError
from lab.workload.resolver import CachingResolver
from tests.lab.workload.conftest import Dns, Namespace

pytestmark = pytest.mark.anyio


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_answers_cached_for_ttl_then_refreshed(dns_server: Dns, namespace: Namespace) -> None:
    """An answer (kubernetes plugin, TTL 30) is reused until its TTL passes on the resolver's clock, then looked up
    again."""
    server = await dns_server("127.0.57.1")
    clock = Clock()
    resolver = CachingResolver(("127.0.57.1", server.port), timeout=1.0, clock=clock)
    assert await resolver.resolve(namespace.name("web")) == ([namespace.web_ip], "ok")
    clock.now = 29.0
    assert (await resolver.resolve(namespace.name("web")))[1] == "cache_hit"
    clock.now = 31.0
    assert (await resolver.resolve(namespace.name("web")))[1] == "ok"


async def test_ttl_cap_and_failures_not_cached(dns_server: Dns, namespace: Namespace) -> None:
    """CLIENT_TTL_CAP bounds reuse; NXDOMAIN raises and is not cached; a dead server is a timeout."""
    server = await dns_server("127.0.57.1")
    clock = Clock()
    resolver = CachingResolver(("127.0.57.1", server.port), timeout=0.5, ttl_cap=5.0, clock=clock)
    await resolver.resolve(namespace.name("web"))
    clock.now = 6.0
    assert (await resolver.resolve(namespace.name("web")))[1] == "ok"
    for _ in range(2):
        with pytest.raises(DnsLookupError) as err:
            await resolver.resolve(namespace.name("missing"))
        assert err.value.result == "nxdomain"
    port = server.port
    await server.stop()
    dead = CachingResolver(("127.0.57.1", port), timeout=0.3)
    with pytest.raises(DnsLookupError) as err:
        await dead.resolve(namespace.name("web"))
    assert err.value.result in ("timeout", "servfail")


class _DropFirst(asyncio.DatagramProtocol):
    """A DNS server that ignores the first query it gets and answers later ones with one A record."""

    def __init__(self) -> None:
        self.seen = 0
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's UDP transport is not an asyncio.DatagramTransport subclass

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.seen += 1
        if self.seen == 1 or self.transport is None:
            return
        request = DNSRecord.parse(data)
        reply = request.reply()
        reply.add_answer(RR(request.q.qname, QTYPE.A, ttl=30, rdata=A("10.96.0.30")))
        self.transport.sendto(reply.pack(), addr)


async def test_an_unanswered_query_is_sent_again_like_glibc_attempts() -> None:
    """A query the server drops is retried within the resolver's attempts; with one attempt it times out."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_DropFirst, local_addr=("127.0.57.2", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        once = CachingResolver(("127.0.57.2", port), timeout=0.3, attempts=1)
        with pytest.raises(DnsLookupError) as err:
            await once.resolve("lost.example.")
        assert err.value.result == "timeout" and proto.seen == 1
        proto.seen = 0
        twice = CachingResolver(("127.0.57.2", port), timeout=0.3, attempts=2)
        assert await twice.resolve("lost.example.") == (["10.96.0.30"], "ok")
        assert proto.seen == 2
    finally:
        transport.close()
