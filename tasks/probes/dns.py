"""The ``dns`` probe: real DNS queries (dnspython, UDP) against a server; also used by coredns-outage verify.

``server`` is ``ip[:port]`` or ``lab`` (the lab's kube-dns address from its endpoints.json). Measures: the
rcode name (``TIMEOUT`` when nothing answered), the answer count, or the success ratio over attempts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from tasks.errors import ProbeError
from tasks.probes.tolerance import within

if TYPE_CHECKING:
    from blueprints.probes import DnsProbe
    from tasks.probes import ProbeContext, ProbeResult


@dataclass(frozen=True)
class DnsAnswer:
    """One query's outcome."""

    rcode: str
    answers: int
    elapsed_s: float


def parse_server(server: str) -> tuple[str, int]:
    """``"127.0.0.1:5353"`` → (host, port); default port 53; ``[v6]:port`` accepted."""
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        return host, int(rest.lstrip(":") or 53)
    host, _, port = server.partition(":")
    return host, int(port or 53)


def query(server: str, qname: str, rdtype: str = "A", timeout: float = 2.0) -> DnsAnswer:
    """Send one UDP query; rcode ``TIMEOUT`` when no answer came within ``timeout``."""
    host, port = parse_server(server)
    msg = dns.message.make_query(qname, dns.rdatatype.from_text(rdtype))
    start = time.monotonic()
    try:
        resp = dns.query.udp(msg, host, port=port, timeout=timeout)
    except dns.exception.Timeout:
        return DnsAnswer("TIMEOUT", 0, time.monotonic() - start)
    except OSError as e:
        return DnsAnswer(f"ERROR:{type(e).__name__}", 0, time.monotonic() - start)
    answers = sum(len(rrset) for rrset in resp.answer)
    return DnsAnswer(dns.rcode.to_text(resp.rcode()), answers, time.monotonic() - start)


def resolve_server(spec_server: str, ctx: ProbeContext) -> str:
    """The server to ask: the spec's, or the lab's for ``lab`` (ProbeError if the lab gives none)."""
    if spec_server != "lab":
        return spec_server
    found = ctx.lab.dns if ctx.lab else None
    if not found:
        raise ProbeError("dns probe server 'lab' but the lab's endpoints name no DNS server")
    return found


def evaluate(spec: DnsProbe, ctx: ProbeContext) -> ProbeResult:
    """Run the DNS probe and check its tolerance."""
    from tasks.probes import ProbeResult

    server = resolve_server(spec.server, ctx)
    timeout = max(0.1, spec.timeout.total_seconds() / spec.attempts)
    results = [query(server, spec.qname, spec.rdtype, timeout) for _ in range(spec.attempts)]
    if spec.measure == "rcode":
        value: Any = results[-1].rcode
    elif spec.measure == "answers":
        value = results[-1].answers
    else:
        value = sum(1 for r in results if r.rcode == "NOERROR") / len(results)
    ok = within(spec.tolerance, value)
    return ProbeResult(ok=ok, value=value, message=f"{spec.qname} {spec.rdtype} @{server}: {spec.measure}={value}")
