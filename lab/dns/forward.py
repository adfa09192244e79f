"""The forward plugin: proxy queries to upstream DNS servers given as ``IP[:port]``.

Only IPv4 loopback upstreams (127.0.0.0/8) are used: the lab sends no traffic elsewhere, so any
other upstream (``/etc/resolv.conf``, ``8.8.8.8``, a name) is ignored, and a forward with no usable
upstream answers SERVFAIL at once (as the lab always did for kubeadm's ``forward . /etc/resolv.conf``).

Like CoreDNS (policy ``random``): upstreams are tried in random order over the client's protocol
(UDP, or TCP with ``force_tcp`` / a TCP client), each try waits up to ``READ_TIMEOUT_S`` (2 s) for
its answer and the whole request gives up after ``REQUEST_TIMEOUT_S`` (5 s) with SERVFAIL. An upstream
that refuses (nothing listens there: ICMP port unreachable on a connected UDP socket, or a TCP RST)
fails its try at once; once every upstream has failed ``max_fails`` (2) tries in a row the request
answers SERVFAIL without waiting out the 5 s (CoreDNS marks it down and gives up the same way).
Any answer (NOERROR, NXDOMAIN, even SERVFAIL) from an upstream is passed on as it came.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import struct
import time
from dataclasses import dataclass

from dnslib import RCODE, DNSError, DNSRecord  # type: ignore[import-untyped]

from lab.dns import metrics
from lab.dns.config import ForwardConfig
from lab.dns.kubernetes import Answer, match_zone

READ_TIMEOUT_S = 2.0
REQUEST_TIMEOUT_S = 5.0
REFUSED_PAUSE_S = 0.05


@dataclass(frozen=True)
class Upstream:
    """One usable upstream: a loopback IPv4 address and port."""

    ip: str
    port: int

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


class UpstreamFailed(Exception):
    """One try at one upstream got no answer (``refused`` or ``timeout``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_upstream(text: str) -> Upstream | None:
    """``IP[:port]`` (optionally ``dns://``) as an Upstream; None if not loopback IPv4 or not an address."""
    addr = text.removeprefix("dns://")
    host, sep, port = addr.rpartition(":")
    if not sep:
        host, port = addr, "53"
    try:
        ip = ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        return None
    if ip.version != 4 or not ip.is_loopback or not 0 < number < 65536:
        return None
    return Upstream(str(ip), number)


class _UdpExchange(asyncio.DatagramProtocol):
    """A connected UDP socket awaiting the reply with one query id."""

    def __init__(self, qid: bytes) -> None:
        self.qid = qid
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data[:2] == self.qid and not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(UpstreamFailed("refused"))


async def _udp(up: Upstream, packet: bytes, timeout: float) -> bytes:
    loop = asyncio.get_running_loop()
    proto = _UdpExchange(packet[:2])
    transport, _ = await loop.create_datagram_endpoint(lambda: proto, remote_addr=(up.ip, up.port))
    try:
        transport.sendto(packet)
        return await asyncio.wait_for(asyncio.shield(proto.reply), timeout)
    except TimeoutError:
        raise UpstreamFailed("timeout") from None
    finally:
        transport.close()
        if not proto.reply.done():
            proto.reply.cancel()


async def _tcp(up: Upstream, packet: bytes, timeout: float) -> bytes:
    async def exchange() -> bytes:
        try:
            reader, writer = await asyncio.open_connection(up.ip, up.port)
        except OSError:
            raise UpstreamFailed("refused") from None
        try:
            writer.write(struct.pack("!H", len(packet)) + packet)
            await writer.drain()
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            return await reader.readexactly(size)
        except (OSError, asyncio.IncompleteReadError):
            raise UpstreamFailed("refused") from None
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    try:
        return await asyncio.wait_for(exchange(), timeout)
    except TimeoutError:
        raise UpstreamFailed("timeout") from None


class ForwardPlugin:
    """Forwards the queries of one zone to loopback upstreams."""

    def __init__(self, config: ForwardConfig, pod: str) -> None:
        self.config = config
        self.pod = pod
        self.upstreams = tuple(u for u in (parse_upstream(t) for t in config.to) if u is not None)

    @property
    def usable(self) -> bool:
        """Whether at least one upstream is a loopback address the lab may query."""
        return bool(self.upstreams)

    def handles(self, qname: str) -> bool:
        """Whether ``qname`` is inside the forwarded zone."""
        return match_zone(qname, (self.config.zone,)) is not None

    async def answer(self, request: DNSRecord, proto: str) -> Answer:
        """The upstream's answer to ``request``, or SERVFAIL when none answered in time."""
        if not self.upstreams:
            return Answer(RCODE.SERVFAIL)
        query = DNSRecord.parse(request.pack())  # a private copy with its own id
        query.header.id = random.randrange(1 << 16)
        packet = query.pack()
        tcp = self.config.force_tcp or proto == "tcp"
        deadline = time.monotonic() + REQUEST_TIMEOUT_S
        fails = dict.fromkeys(self.upstreams, 0)
        order = random.sample(self.upstreams, len(self.upstreams))
        i = 0
        while (left := deadline - time.monotonic()) > 0:
            up = order[i % len(order)]
            i += 1
            metrics.FORWARD_REQUESTS.labels(self.pod, str(up)).inc()
            try:
                data = await (_tcp if tcp else _udp)(up, packet, min(READ_TIMEOUT_S, left))
                reply = DNSRecord.parse(data)
            except UpstreamFailed as failed:
                metrics.FORWARD_FAILURES.labels(self.pod, str(up), failed.reason).inc()
                fails[up] += 1
                if self.config.max_fails and all(n >= self.config.max_fails for n in fails.values()):
                    break
                if failed.reason == "refused" and i % len(order) == 0:
                    await asyncio.sleep(min(REFUSED_PAUSE_S, max(0.0, deadline - time.monotonic())))
                continue
            except (DNSError, ValueError, IndexError, struct.error, UnicodeError):
                metrics.FORWARD_FAILURES.labels(self.pod, str(up), "malformed").inc()
                continue
            metrics.FORWARD_RESPONSES.labels(self.pod, str(up), RCODE.get(reply.header.rcode)).inc()
            return Answer(reply.header.rcode, list(reply.rr), list(reply.auth))
        return Answer(RCODE.SERVFAIL)
