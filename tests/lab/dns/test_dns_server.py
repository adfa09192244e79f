"""Tests for lab.dns.server and lab.dns.transport: block choice, erratic, truncation, SRV, REFUSED."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.rcode
import pytest

from lab.dns.program import CoreDnsProgram
from lab.dns.testing import addresses, metric, query
from tests.lab.dns.fake_kubeapi import corefile_cm, endpoints, service
from tests.lab.dns.kube_rest import Cluster

pytestmark = pytest.mark.anyio
StartDns = Callable[..., Awaitable[CoreDnsProgram]]
IP = "127.0.53.1"


async def start_with(cluster: Cluster, start_dns: StartDns, corefile: str) -> CoreDnsProgram:
    """Write the namespace's Corefile and start a replica reading it."""
    await cluster.kube.put("configmaps", corefile_cm(corefile, ns=cluster.ns))
    return await start_dns(cluster.url, cluster.env(), token=cluster.token)


async def test_zone_only_server_refuses_other_names(cluster: Cluster, start_dns: StartDns) -> None:
    """A Corefile serving only cluster.local answers REFUSED for names outside it."""
    dns_pod = await start_with(cluster, start_dns, "cluster.local:53 {\n kubernetes\n}")
    assert (await query(IP, dns_pod.port, "example.org")).rcode() == dns.rcode.REFUSED
    dropped = {"server": "dns://:53", "zone": "dropped", "proto": "udp", "family": "1", "type": "A"}
    assert metric("coredns_dns_requests_total", dns_pod.pod, **dropped) == 1
    assert addresses(await query(IP, dns_pod.port, cluster.name("web"))) == {"10.96.0.20"}


async def test_erratic_drop_scoped_to_zone(cluster: Cluster, start_dns: StartDns) -> None:
    """`erratic { drop 1 }` in a zone block drops that zone's queries and leaves other zones alone."""
    other = await cluster.kube.namespace("other")
    await cluster.kube.put("services", service("api", ns=other, cluster_ip="10.96.1.1"))
    corefile = (
        f"{cluster.ns}.svc.cluster.local {{\n erratic {{\n drop 1\n }}\n kubernetes cluster.local\n}}\n"
    )
    dns_pod = await start_with(cluster, start_dns, corefile + ".:53 {\n kubernetes cluster.local\n}\n")
    with pytest.raises(dns.exception.Timeout):
        await query(IP, dns_pod.port, cluster.name("web"), timeout=0.3)
    assert addresses(await query(IP, dns_pod.port, f"api.{other}.svc.cluster.local")) == {"10.96.1.1"}


async def test_truncate_makes_resolver_retry_over_tcp(cluster: Cluster, start_dns: StartDns) -> None:
    """`erratic { truncate 1 }` sets TC on UDP answers; dnspython's resolver then gets the answer over TCP."""
    dns_pod = await start_with(
        cluster, start_dns, ".:53 {\n erratic {\n truncate 1\n }\n kubernetes cluster.local\n}"
    )
    udp = await query(IP, dns_pod.port, cluster.name("web"))
    assert udp.flags & dns.flags.TC and not udp.answer
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [IP], dns_pod.port
    answer = await resolver.resolve(cluster.name("web"), "A")
    assert [r.address for r in answer] == ["10.96.0.20"]


async def test_large_headless_answer_is_truncated_over_udp(cluster: Cluster, start_dns: StartDns) -> None:
    """A headless service with 60 endpoints does not fit 512 bytes: TC over UDP, all records over TCP."""
    ips = [f"127.0.2.{i}" for i in range(1, 61)]
    await cluster.kube.put("services", service("big", ns=cluster.ns, cluster_ip="None"))
    await cluster.kube.put("endpoints", endpoints("big", ips, ns=cluster.ns))
    dns_pod = await start_with(cluster, start_dns, ".:53 {\n kubernetes cluster.local\n}")
    udp = await query(IP, dns_pod.port, cluster.name("big"))
    assert udp.flags & dns.flags.TC
    tcp = await query(IP, dns_pod.port, cluster.name("big"), tcp=True)
    assert addresses(tcp) == set(ips)


async def test_srv_and_headless_hostnames(cluster: Cluster, start_dns: StartDns) -> None:
    """SRV for a named port and `<ip-dashed>.<svc>` A records for a headless service's endpoints."""
    dns_pod = await start_with(cluster, start_dns, ".:53 {\n kubernetes cluster.local\n}")
    srv = await query(IP, dns_pod.port, f"_http._tcp.{cluster.name('web')}", "SRV")
    assert [(r.port, str(r.target)) for rs in srv.answer for r in rs] == [(80, cluster.name("web") + ".")]
    assert addresses(await query(IP, dns_pod.port, "127-0-1-2." + cluster.name("model"))) == {"127.0.1.2"}
    missing = await query(IP, dns_pod.port, "127-0-1-4." + cluster.name("model"))
    assert missing.rcode() == dns.rcode.NXDOMAIN
