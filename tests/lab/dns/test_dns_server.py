"""Tests for lab.dns.server and lab.dns.transport: block choice, erratic, truncation, SRV, REFUSED."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.rcode
import pytest

from lab.dns.program import CoreDnsProgram
from lab.dns.testing import addresses, query
from tests.lab.dns.fake_kubeapi import FakeKubeApi, corefile_cm, endpoints, service

pytestmark = pytest.mark.anyio
StartDns = Callable[..., Awaitable[CoreDnsProgram]]
IP = "127.0.53.1"


async def test_zone_only_server_refuses_other_names(fake_api: FakeKubeApi, start_dns: StartDns) -> None:
    """A Corefile serving only cluster.local answers REFUSED for names outside it."""
    fake_api.put("configmaps", corefile_cm("cluster.local:53 {\n kubernetes\n}"))
    dns_pod = await start_dns(fake_api.url)
    assert (await query(IP, dns_pod.port, "example.org")).rcode() == dns.rcode.REFUSED
    assert addresses(await query(IP, dns_pod.port, "web.default.svc.cluster.local")) == {"10.96.0.20"}


async def test_erratic_drop_scoped_to_zone(fake_api: FakeKubeApi, start_dns: StartDns) -> None:
    """`erratic { drop 1 }` in a zone block drops that zone's queries and leaves other zones alone."""
    fake_api.put("services", service("api", ns="prod", cluster_ip="10.96.1.1"))
    corefile = "default.svc.cluster.local {\n erratic {\n drop 1\n }\n kubernetes cluster.local\n}\n"
    fake_api.put("configmaps", corefile_cm(corefile + ".:53 {\n kubernetes cluster.local\n}\n"))
    dns_pod = await start_dns(fake_api.url)
    with pytest.raises(dns.exception.Timeout):
        await query(IP, dns_pod.port, "web.default.svc.cluster.local", timeout=0.3)
    assert addresses(await query(IP, dns_pod.port, "api.prod.svc.cluster.local")) == {"10.96.1.1"}


async def test_truncate_makes_resolver_retry_over_tcp(fake_api: FakeKubeApi, start_dns: StartDns) -> None:
    """`erratic { truncate 1 }` sets TC on UDP answers; dnspython's resolver then gets the answer over TCP."""
    fake_api.put(
        "configmaps", corefile_cm(".:53 {\n erratic {\n truncate 1\n }\n kubernetes cluster.local\n}")
    )
    dns_pod = await start_dns(fake_api.url)
    udp = await query(IP, dns_pod.port, "web.default.svc.cluster.local")
    assert udp.flags & dns.flags.TC and not udp.answer
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [IP], dns_pod.port
    answer = await resolver.resolve("web.default.svc.cluster.local", "A")
    assert [r.address for r in answer] == ["10.96.0.20"]


async def test_large_headless_answer_is_truncated_over_udp(
    fake_api: FakeKubeApi, start_dns: StartDns
) -> None:
    """A headless service with 60 endpoints does not fit 512 bytes: TC over UDP, all records over TCP."""
    ips = [f"127.0.2.{i}" for i in range(1, 61)]
    fake_api.put("services", service("big", cluster_ip="None"))
    fake_api.put("endpoints", endpoints("big", ips))
    fake_api.put("configmaps", corefile_cm(".:53 {\n kubernetes cluster.local\n}"))
    dns_pod = await start_dns(fake_api.url)
    udp = await query(IP, dns_pod.port, "big.default.svc.cluster.local")
    assert udp.flags & dns.flags.TC
    tcp = await query(IP, dns_pod.port, "big.default.svc.cluster.local", tcp=True)
    assert addresses(tcp) == set(ips)


async def test_srv_and_headless_hostnames(fake_api: FakeKubeApi, start_dns: StartDns) -> None:
    """SRV for a named port and `<ip-dashed>.<svc>` A records for a headless service's endpoints."""
    fake_api.put("configmaps", corefile_cm(".:53 {\n kubernetes cluster.local\n}"))
    dns_pod = await start_dns(fake_api.url)
    srv = await query(IP, dns_pod.port, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert [(r.port, str(r.target)) for rs in srv.answer for r in rs] == [
        (80, "web.default.svc.cluster.local.")
    ]
    host = await query(IP, dns_pod.port, "127-0-1-2.model.default.svc.cluster.local")
    assert addresses(host) == {"127.0.1.2"}
    missing = await query(IP, dns_pod.port, "127-0-1-4.model.default.svc.cluster.local")
    assert missing.rcode() == dns.rcode.NXDOMAIN
