"""The dns probe with real DNS packets against a local dnslib server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSServer

from blueprints.probes import DnsProbe, Tolerance
from tasks.errors import ProbeError
from tasks.probes import ProbeContext, evaluate
from tasks.probes.dns import parse_server, query


class _Resolver(BaseResolver):  # type: ignore[misc]
    """good.test → 192.0.2.1 and 192.0.2.2; bad.test → SERVFAIL; anything else NXDOMAIN."""

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".")
        if name == "good.test":
            for ip in ("192.0.2.1", "192.0.2.2"):
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(ip), ttl=5))
        elif name == "bad.test":
            reply.header.rcode = RCODE.SERVFAIL
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


@pytest.fixture(scope="module")
def dns_server() -> Iterator[str]:
    """A real UDP DNS server on a free loopback port."""
    server = DNSServer(_Resolver(), address="127.0.0.1", port=0)
    server.start_thread()
    try:
        yield f"127.0.0.1:{server.server.server_address[1]}"
    finally:
        server.stop()
        server.server.server_close()


def test_rcode_noerror(dns_server: str) -> None:
    """A name that resolves meets the default NOERROR tolerance."""
    assert evaluate(DnsProbe(name="d", server=dns_server, qname="good.test"), ProbeContext()).ok


def test_servfail_fails_the_default_tolerance(dns_server: str) -> None:
    """SERVFAIL is measured and fails the NOERROR tolerance."""
    res = evaluate(DnsProbe(name="d", server=dns_server, qname="bad.test"), ProbeContext())
    assert not res.ok and res.value == "SERVFAIL"


def test_answer_count_and_success_ratio(dns_server: str) -> None:
    """answers counts records; success-ratio is the NOERROR share over attempts."""
    answers = evaluate(DnsProbe(name="d", server=dns_server, qname="good.test", measure="answers",
                                tolerance=Tolerance(value=2)), ProbeContext())
    ratio = evaluate(DnsProbe(name="d", server=dns_server, qname="good.test", measure="success-ratio", attempts=3,
                              tolerance=Tolerance(range=(0.99, 1.0))), ProbeContext())
    assert answers.ok and ratio.ok and ratio.value == 1.0


def test_silence_is_a_timeout() -> None:
    """A server that never answers gives rcode TIMEOUT."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        assert query(f"127.0.0.1:{sink.getsockname()[1]}", "x.test", timeout=0.3).rcode == "TIMEOUT"


def test_lab_server_without_lab_endpoints_cannot_be_evaluated() -> None:
    """server 'lab' with no lab endpoints raises ProbeError."""
    with pytest.raises(ProbeError):
        evaluate(DnsProbe(name="d", server="lab", qname="x"), ProbeContext())


def test_parse_server_forms() -> None:
    """ip, ip:port and [v6]:port are understood."""
    assert parse_server("10.0.0.1") == ("10.0.0.1", 53)
    assert parse_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_server("[::1]:54") == ("::1", 54)
