"""Test helpers for users of the lab DNS server: start a replica, send real queries, poll, read metrics."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import dns.asyncquery
import dns.message
import dns.rdatatype
from prometheus_client import REGISTRY

from lab.dns.errors import DnsLabError
from lab.dns.program import CoreDnsProgram
from lab.pods import PodContext


class PollTimeout(DnsLabError):
    """A polled condition did not become true before its deadline."""


async def poll(
    check: Callable[[], Awaitable[bool] | bool], timeout: float = 10.0, every: float = 0.05
) -> None:
    """Poll ``check`` (sync or async) until true; raise ``PollTimeout`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise PollTimeout(f"condition not met within {timeout}s")
        await asyncio.sleep(every)


async def query(
    ip: str, port: int, name: str, rtype: str = "A", tcp: bool = False, timeout: float = 2.0
) -> dns.message.Message:
    """Send one real DNS query (UDP or TCP) and return the response message."""
    q = dns.message.make_query(name, rtype)
    if tcp:
        return await dns.asyncquery.tcp(q, ip, port=port, timeout=timeout)
    return await dns.asyncquery.udp(q, ip, port=port, timeout=timeout)


def addresses(msg: dns.message.Message) -> set[str]:
    """Every A/AAAA address in a response's answer section."""
    wanted = (dns.rdatatype.A, dns.rdatatype.AAAA)
    return {str(rr.address) for rrset in msg.answer if rrset.rdtype in wanted for rr in rrset}


def coredns_context(
    api_url: str, token: str, env: dict[str, str] | None = None, ip: str = "127.0.53.1", name: str = ""
) -> PodContext:
    """A PodContext for a DNS pod on ``ip`` (ephemeral port unless env sets PORT)."""
    return PodContext(
        namespace="kube-system",
        name=name or f"coredns-{uuid.uuid4().hex[:8]}",
        node_name="node-1",
        pod_ip=ip,
        labels={"k8s-app": "kube-dns"},
        env={"PORT": "0", **(env or {})},
        args=[],
        api_url=api_url,
        api_token=token,
    )


@asynccontextmanager
async def running_coredns(
    api_url: str,
    token: str,
    env: dict[str, str] | None = None,
    ip: str = "127.0.53.1",
    startup_sync_timeout: float | None = None,
) -> AsyncIterator[CoreDnsProgram]:
    """Run one CoreDnsProgram replica for the duration of the block (always stopped)."""
    program = CoreDnsProgram(startup_sync_timeout=startup_sync_timeout)
    try:
        await program.start(coredns_context(api_url, token, env, ip))
        yield program
    finally:
        await program.stop()


def metric(name: str, pod: str, **labels: str) -> float:
    """The value of one sample in the default registry for ``pod`` (0.0 when absent)."""
    return REGISTRY.get_sample_value(name, {"pod": pod, **labels}) or 0.0


def node_local_corefile(
    upstream: str, success_ttl: int = 30, denial_ttl: int = 5, serve_stale: str | None = None
) -> str:
    """NodeLocal DNSCache's Corefile for cluster.local: cache (optionally serve_stale) + forward."""
    stale = f"\n        serve_stale {serve_stale}" if serve_stale else ""
    return (
        "cluster.local:53 {\n    errors\n    cache {\n"
        f"        success 9984 {success_ttl}\n        denial 9984 {denial_ttl}{stale}\n    }}\n"
        f"    reload\n    forward . {upstream}\n    prometheus :9253\n}}\n"
    )
