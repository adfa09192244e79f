"""Answer DNS packets as CoreDNS would for a parsed Corefile: block choice, plugin chain, metrics.

Per server block the chain is: metrics → erratic → cache → kubernetes → forward. ``forward`` has no
network in the lab, so forwarded names get SERVFAIL; a name no block serves gets REFUSED.
``handle`` is synchronous and returns the reply bytes (None to drop) plus a delay to apply.
"""

from __future__ import annotations

import random
import struct
import time
from dataclasses import dataclass

from dnslib import EDNS0, QTYPE, RCODE, DNSError, DNSRecord  # type: ignore[import-untyped]

from lab.dns import metrics
from lab.dns.cache import DnsCache
from lab.dns.corefile import Corefile, ServerBlock
from lab.dns.kubernetes import Answer, KubernetesPlugin, match_zone
from lab.dns.store import ClusterStore

UDP_DEFAULT_SIZE = 512


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
        self.loadbalance = block.has("loadbalance")
        self._queries = 0

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

    def _backend(self, qname: str, qtype: int) -> Answer:
        if self.kubernetes is not None and self.kubernetes.handles(qname):
            return self.kubernetes.answer(qname, qtype)
        return Answer(RCODE.SERVFAIL)

    def _cached(self, qname: str, qtype: int) -> Answer:
        cache = self.cache
        if cache is None:
            return self._backend(qname, qtype)
        key = (qname, qtype)
        hit = cache.get(key)
        if hit is None:
            metrics.CACHE_MISSES.labels(self.pod, self.server).inc()
            answer = self._backend(qname, qtype)
            cache.put(key, answer)
            self._entries()
            return answer
        if not hit.stale:
            metrics.CACHE_HITS.labels(self.pod, self.server, "denial" if hit.denial else "success").inc()
            return hit.answer
        if cache.config.stale_refresh == "verify":
            fresh = self._backend(qname, qtype)
            if fresh.rcode != RCODE.SERVFAIL:
                metrics.CACHE_MISSES.labels(self.pod, self.server).inc()
                cache.put(key, fresh)
                return fresh
        else:
            cache.put(key, self._backend(qname, qtype))
        metrics.CACHE_STALE.labels(self.pod, self.server).inc()
        return hit.answer

    def _entries(self) -> None:
        if self.cache is not None:
            metrics.CACHE_ENTRIES.labels(self.pod, self.server, "success").set(len(self.cache.success))
            metrics.CACHE_ENTRIES.labels(self.pod, self.server, "denial").set(len(self.cache.denial))

    def handle(self, request: DNSRecord, qname: str, zone: str, proto: str, started: float) -> Reply:
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
            answer = self._cached(qname, qtype)
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

    def handle(self, data: bytes, proto: str) -> Reply:
        """Answer one packet (``proto`` is ``udp`` or ``tcp``)."""
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
        return self._zones[zone].handle(request, qname, zone + ("" if zone == "." else "."), proto, started)
