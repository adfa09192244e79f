"""Tests for lab.dns.forward: a CoreDnsProgram as a node-local cache forwarding to a kube-dns replica.

Real DNS packets throughout: the upstream is a CoreDnsProgram fed by the real (emulated) API server;
"kube-dns scaled to 0" is the upstream replica stopped, so nothing listens at its address any more.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator

import dns.exception
import dns.rcode
import pytest

from lab.dns.forward import parse_upstream
from lab.dns.program import CoreDnsProgram
from lab.dns.testing import addresses, metric, node_local_corefile, poll, query
from tests.lab.dns.fake_kubeapi import corefile_cm
from tests.lab.dns.kube_rest import Cluster

pytestmark = pytest.mark.anyio
StartDns = Callable[..., Awaitable[CoreDnsProgram]]
KUBE_DNS_IP, LOCAL_IP = "127.0.53.1", "127.0.53.2"
SERVER = {"server": "dns://:53"}
KUBE_DNS_COREFILE = ".:53 {\n errors\n kubernetes cluster.local {\n ttl 1\n }\n reload\n}\n"


async def start_pair(
    cluster: Cluster, start_dns: StartDns, serve_stale: str | None = None
) -> tuple[CoreDnsProgram, CoreDnsProgram]:
    """An upstream kube-dns replica (answers with TTL 1) and a node-local cache forwarding to it."""
    await cluster.kube.put("configmaps", corefile_cm(KUBE_DNS_COREFILE, ns=cluster.ns))
    upstream = await start_dns(cluster.url, cluster.env(), token=cluster.token, ip=KUBE_DNS_IP)
    corefile = node_local_corefile(f"{KUBE_DNS_IP}:{upstream.port}", 1, 1, serve_stale)
    env = {"COREFILE_CONFIGMAP": f"{cluster.ns}/node-local-dns", "COREFILE": corefile}
    local = await start_dns(cluster.url, env, token=cluster.token, ip=LOCAL_IP)
    return upstream, local


@pytest.fixture
def black_hole() -> Iterator[Callable[[int], None]]:
    """Bind a UDP socket that never answers on KUBE_DNS_IP:port (closed at teardown)."""
    socks: list[socket.socket] = []

    def bind(port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        socks.append(sock)
        sock.bind((KUBE_DNS_IP, port))

    try:
        yield bind
    finally:
        for sock in socks:
            sock.close()


def test_parse_upstream_allows_only_loopback_ipv4() -> None:
    """Loopback IPv4 upstreams parse (port 53 by default); resolv.conf, public and IPv6 addresses do not."""
    assert str(parse_upstream("127.96.0.10")) == "127.96.0.10:53"
    assert str(parse_upstream("dns://127.0.0.1:5353")) == "127.0.0.1:5353"
    for bad in ("/etc/resolv.conf", "8.8.8.8", "8.8.8.8:53", "[::1]:53", "127.0.0.1:0", "kube-dns"):
        assert parse_upstream(bad) is None, bad


async def test_node_local_answers_via_forward(cluster: Cluster, start_dns: StartDns) -> None:
    """The node-local cache answers cluster names through its upstream over UDP and TCP, then from cache."""
    upstream, local = await start_pair(cluster, start_dns)
    assert local.ready() and local.corefile is not None and not local.corefile.uses_kubernetes
    to = f"{KUBE_DNS_IP}:{upstream.port}"
    web = await query(LOCAL_IP, local.port, cluster.name("web"))
    assert web.rcode() == dns.rcode.NOERROR and addresses(web) == {"10.96.0.20"}
    model = await query(LOCAL_IP, local.port, cluster.name("model"), tcp=True)
    assert addresses(model) == {"127.0.1.2", "127.0.1.3"}
    assert (await query(LOCAL_IP, local.port, cluster.name("nope"))).rcode() == dns.rcode.NXDOMAIN
    await query(LOCAL_IP, local.port, cluster.name("web"))
    assert metric("coredns_forward_responses_total", local.pod, to=to, rcode="NOERROR") == 2
    assert metric("coredns_forward_responses_total", local.pod, to=to, rcode="NXDOMAIN") == 1
    assert metric("coredns_cache_hits_total", local.pod, type="success", **SERVER) >= 1
    refused = await query(LOCAL_IP, local.port, "example.com")
    assert refused.rcode() == dns.rcode.REFUSED


async def test_non_loopback_upstream_answers_servfail(cluster: Cluster, start_dns: StartDns) -> None:
    """A forward to a non-loopback upstream sends nothing and answers SERVFAIL at once."""
    env = {"COREFILE_CONFIGMAP": f"{cluster.ns}/none", "COREFILE": node_local_corefile("8.8.8.8")}
    local = await start_dns(cluster.url, env, token=cluster.token, ip=LOCAL_IP)
    assert (await query(LOCAL_IP, local.port, cluster.name("web"))).rcode() == dns.rcode.SERVFAIL
    assert metric("coredns_forward_requests_total", local.pod, to="8.8.8.8:53") == 0


async def test_serve_stale_survives_kube_dns_scaled_to_zero(cluster: Cluster, start_dns: StartDns) -> None:
    """With serve_stale, the node-local cache keeps answering (TTL 0, stale counter moving) after kube-dns is gone."""
    upstream, local = await start_pair(cluster, start_dns, serve_stale="1h")
    assert addresses(await query(LOCAL_IP, local.port, cluster.name("web"))) == {"10.96.0.20"}
    await upstream.stop()
    await asyncio.sleep(1.2)  # let the 1 s entry expire: there is no condition to poll before it does
    for _ in range(5):
        answer = await query(LOCAL_IP, local.port, cluster.name("web"), timeout=1.0)
        assert answer.rcode() == dns.rcode.NOERROR and addresses(answer) == {"10.96.0.20"}
        assert answer.answer[0].ttl == 0
    assert metric("coredns_cache_served_stale_total", local.pod, **SERVER) >= 5
    to = f"{KUBE_DNS_IP}:{upstream.port}"
    await poll(
        lambda: metric("coredns_forward_upstream_failures_total", local.pod, to=to, reason="refused") > 0
    )


async def test_without_serve_stale_lookups_fail_after_ttl(cluster: Cluster, start_dns: StartDns) -> None:
    """Without serve_stale, once the cached answer's TTL passes the node-local cache answers SERVFAIL."""
    upstream, local = await start_pair(cluster, start_dns)
    assert addresses(await query(LOCAL_IP, local.port, cluster.name("web"))) == {"10.96.0.20"}
    await upstream.stop()

    async def failing() -> bool:
        answer = await query(LOCAL_IP, local.port, cluster.name("web"), timeout=6.0)
        return bool(answer.rcode() == dns.rcode.SERVFAIL)

    await poll(failing, timeout=5)
    assert metric("coredns_cache_served_stale_total", local.pod, **SERVER) == 0


@pytest.mark.parametrize("mode", ["1h", "1h verify"])
async def test_serve_stale_with_a_black_holed_upstream(
    cluster: Cluster, start_dns: StartDns, black_hole: Callable[[int], None], mode: str
) -> None:
    """Upstream silent: immediate mode answers stale within a 1 s client timeout; verify only after the forward gives up."""
    upstream, local = await start_pair(cluster, start_dns, serve_stale=mode)
    assert addresses(await query(LOCAL_IP, local.port, cluster.name("web"))) == {"10.96.0.20"}
    port = upstream.port
    await upstream.stop()
    black_hole(port)
    await asyncio.sleep(1.2)  # let the 1 s entry expire
    if mode == "1h":
        answer = await query(LOCAL_IP, local.port, cluster.name("web"), timeout=1.0)
    else:
        with pytest.raises(dns.exception.Timeout):
            await query(LOCAL_IP, local.port, cluster.name("web"), timeout=1.0)
        answer = await query(LOCAL_IP, local.port, cluster.name("web"), timeout=6.0)
    assert addresses(answer) == {"10.96.0.20"} and answer.answer[0].ttl == 0
    to = f"{KUBE_DNS_IP}:{port}"
    await poll(
        lambda: metric("coredns_forward_upstream_failures_total", local.pod, to=to, reason="timeout") > 0, 6
    )
