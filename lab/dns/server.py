"""Answer DNS packets as CoreDNS would for a parsed Corefile: block choice, plugin chain, metrics.

Per server block the chain is: metrics → erratic → cache → kubernetes → forward. ``forward`` sends
to loopback upstreams only (``lab.dns.forward``); with none usable, forwarded names get SERVFAIL.
A name no block serves gets REFUSED. ``DnsEngine.handle`` returns a ``Reply`` at once when nothing
has to go upstream, else an awaitable of it (the transport awaits it): the chain is written once,
as coroutines, and driven synchronously when it cannot suspend.

serve_stale follows CoreDNS's cache plugin: an expired entry (within the stale window) is answered
with TTL 0; ``immediate`` (the default) answers it at once and refreshes in the background,
``verify`` first asks the backend and answers stale only if that gives neither NOERROR nor NXDOMAIN.
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from dnslib import EDNS0, QTYPE, RCODE, DNSError, DNSRecord  # type: ignore[import-untyped]

from lab.dns import metrics
from lab.dns.cache import DnsCache
from lab.dns.corefile import Corefile, ServerBlock
from lab.dns.errors import DnsLabError
from lab.dns.forward import ForwardPlugin
from lab.dns.kubernetes import Answer, KubernetesPlugin, match_zone
from lab.dns.store import ClusterStore

UDP_DEFAULT_SIZE = 512
T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine that never suspends to its result (raise if it tries to)."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise DnsLabError("the plugin chain suspended on the synchronous path")


@dataclass(frozen=True)
class Reply:
    """What to send back: the packet (None: drop the query) after ``delay_s`` seconds."""

    data: bytes | None
    delay_s: float = 0.0


class BlockHandler:
    """The plugin chain of one server block."""

    def __init__(self, block: ServerBlock, store: ClusterStore, pod: str) -> None:
        self.block = block
        self.pod = pod
        self.server = f"dns://:{block.port}"
        self.kubernetes = KubernetesPlugin(block.kubernetes, store) if block.kubernetes else None
        self.cache = DnsCache(block.cache) if block.cache else None
        self.forward = ForwardPlugin(block.forward, pod) if block.forward else None
        self.loadbalance = block.has("loadbalance")
        self._queries = 0
        self._refreshing: dict[tuple[str, int], asyncio.Task[None]] = {}

    def goes_upstream(self, qname: str) -> bool:
        """Whether answering ``qname`` may wait on a forward upstream (the async path)."""
        if self.forward is None or not self.forward.usable or not self.forward.handles(qname):
            return False
        return self.kubernetes is None or not self.kubernetes.handles(qname)

    def _erratic(self, proto: str) -> tuple[str | None, float]:
        """The erratic verdict for this query: drop / truncate / servfail / None, and a delay."""
        cfg = self.block.erratic
        if cfg is None:
            return None, 0.0
        self._queries += 1
        n = self._queries
        delay = cfg.delay_s if cfg.delay and n % cfg.delay == 0 else 0.0
        if cfg.drop and n % cfg.drop == 0:
            return "drop", delay
        if cfg.servfail and n % cfg.servfail == 0:
            return "servfail", delay
        if cfg.truncate and n % cfg.truncate == 0 and proto == "udp":
            return "truncate", delay
        return None, delay

    async def _backend(self, request: DNSRecord, qname: str, qtype: int, proto: str) -> Answer:
        if self.kubernetes is not None and self.kubernetes.handles(qname):
            return self.kubernetes.answer(qname, qtype)
        if self.forward is not None and self.forward.handles(qname):
            return await self.forward.answer(request, proto)
        return Answer(RCODE.SERVFAIL)

    async def _cached(self, request: DNSRecord, qname: str, qtype: int, proto: str) -> Answer:
        cache = self.cache
        if cache is None:
            return await self._backend(request, qname, qtype, proto)
        key = (qname, qtype)
        hit = cache.get(key)
        if hit is None:
            metrics.CACHE_MISSES.labels(self.pod, self.server).inc()
            answer = await self._backend(request, qname, qtype, proto)
            cache.put(key, answer)
            self._entries()
            return answer
        if not hit.stale:
            metrics.CACHE_HITS.labels(self.pod, self.server, "denial" if hit.denial else "success").inc()
            return hit.answer
        if cache.config.stale_refresh == "verify":
            fresh = await self._backend(request, qname, qtype, proto)
            if fresh.rcode in (RCODE.NOERROR, RCODE.NXDOMAIN):
                metrics.CACHE_MISSES.labels(self.pod, self.server).inc()
                cache.put(key, fresh)
                return fresh
        elif self.goes_upstream(qname):
            self._refresh_later(request, key, proto)
        else:
            cache.put(key, await self._backend(request, qname, qtype, proto))
        metrics.CACHE_STALE.labels(self.pod, self.server).inc()
        return hit.answer

    def refreshes(self) -> list[asyncio.Task[None]]:
        """Background refreshes still running."""
        return list(self._refreshing.values())

    def _refresh_later(self, request: DNSRecord, key: tuple[str, int], proto: str) -> None:
        """Refresh a stale entry in the background (one refresh per key at a time)."""
        if key in self._refreshing:
            return

        async def refresh() -> None:
            try:
                answer = await self._backend(request, key[0], key[1], proto)
                if self.cache is not None:
                    self.cache.put(key, answer)
            finally:
                self._refreshing.pop(key, None)

        self._refreshing[key] = asyncio.get_running_loop().create_task(refresh())

    def _entries(self) -> None:
        if self.cache is not None:
            metrics.CACHE_ENTRIES.labels(self.pod, self.server, "success").set(len(self.cache.success))
            metrics.CACHE_ENTRIES.labels(self.pod, self.server, "denial").set(len(self.cache.denial))

    async def handle(self, request: DNSRecord, qname: str, zone: str, proto: str, started: float) -> Reply:
        """Run the chain for one parsed request."""
        qtype = request.q.qtype
        type_name = QTYPE.get(qtype, "other")
        metrics.REQUESTS.labels(self.pod, self.server, zone, proto, "1", type_name).inc()
        verdict, delay = self._erratic(proto)
        if verdict == "drop":
            return Reply(None, delay)
        reply = request.reply()
        if verdict == "servfail":
            answer = Answer(RCODE.SERVFAIL)
        elif verdict == "truncate":
            answer = Answer(RCODE.NOERROR)
            reply.header.tc = 1
        else:
            answer = await self._cached(request, qname, qtype, proto)
        reply.header.rcode = answer.rcode
        rrs = list(answer.answers)
        if self.loadbalance and len(rrs) > 1:
            random.shuffle(rrs)
        for rr in rrs:
            reply.add_answer(rr)
        for rr in answer.authority:
            reply.add_auth(rr)
        data = _fit(reply, request, proto)
        metrics.RESPONSES.labels(self.pod, self.server, zone, RCODE.get(answer.rcode)).inc()
        elapsed = time.perf_counter() - started + delay
        metrics.DURATION.labels(self.pod, self.server, zone, type_name).observe(elapsed)
        return Reply(data, delay)


def _fit(reply: DNSRecord, request: DNSRecord, proto: str) -> bytes:
    """Pack ``reply``; over UDP, truncate (TC bit, no records) when it exceeds the client's size."""
    data: bytes = reply.pack()
    if proto != "udp":
        return data
    limit = UDP_DEFAULT_SIZE
    for rr in request.ar:
        if isinstance(rr, EDNS0) or rr.rtype == QTYPE.OPT:
            limit = max(UDP_DEFAULT_SIZE, int(rr.rclass))
    if len(data) <= limit:
        return data
    short = request.reply()
    short.header.tc = 1
    short.header.rcode = reply.header.rcode
    packed: bytes = short.pack()
    return packed


class DnsEngine:
    """All server blocks of one Corefile, answering raw packets."""

    def __init__(self, corefile: Corefile, store: ClusterStore, pod: str) -> None:
        self.corefile = corefile
        self.pod = pod
        self.blocks = [BlockHandler(b, store, pod) for b in corefile.blocks]
        self._zones = {zone: handler for handler in self.blocks for zone in handler.block.zones}

    def handle(self, data: bytes, proto: str) -> Reply | Awaitable[Reply]:
        """Answer one packet (``proto`` is ``udp`` or ``tcp``); an awaitable when it goes upstream."""
        started = time.perf_counter()
        try:
            request = DNSRecord.parse(data)
        except (DNSError, ValueError, IndexError, struct.error, UnicodeError):  # garbage in
            return Reply(None)
        if not request.questions:
            reply = request.reply()
            reply.header.rcode = RCODE.FORMERR
            return Reply(reply.pack())
        qname = str(request.q.qname).lower().rstrip(".") or "."
        zone = match_zone(qname, tuple(self._zones))
        if zone is None:
            reply = request.reply()
            reply.header.rcode = RCODE.REFUSED
            qtype = QTYPE.get(request.q.qtype, "other")
            metrics.REQUESTS.labels(self.pod, "dns://:53", "dropped", proto, "1", qtype).inc()
            metrics.RESPONSES.labels(self.pod, "dns://:53", "dropped", "REFUSED").inc()
            return Reply(reply.pack())
        block = self._zones[zone]
        chain = block.handle(request, qname, zone + ("" if zone == "." else "."), proto, started)
        return chain if block.goes_upstream(qname) else run_sync(chain)

    async def answer(self, data: bytes, proto: str) -> Reply:
        """``handle``, always awaited (for callers that do not care about the fast path)."""
        reply = self.handle(data, proto)
        return reply if isinstance(reply, Reply) else await reply

    async def close(self) -> None:
        """Cancel background cache refreshes (called when the engine is replaced or stopped)."""
        tasks = [t for b in self.blocks for t in b.refreshes()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
