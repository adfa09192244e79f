"""Tests for lab.dns.program: real DNS packets against CoreDnsProgram fed by a (fake) API server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import dns.exception
import dns.rcode
import pytest

from lab.dns.errors import CorefileError
from lab.dns.program import CoreDnsProgram
from lab.dns.testing import addresses, metric, poll, query
from tests.lab.dns.fake_kubeapi import FakeKubeApi, corefile_cm, service

StartDns = Callable[..., Awaitable[CoreDnsProgram]]

pytestmark = pytest.mark.anyio

NO_CACHE = ".:53 {\n errors\n ready\n kubernetes cluster.local {\n ttl 30\n }\n reload\n}\n"


def sample(name: str, program: CoreDnsProgram, **labels: str) -> float:
    """One metric sample of ``program``'s replica."""
    return metric(name, program.pod, **labels)


async def test_answers_normal_headless_and_unknown(fake_api: FakeKubeApi, start_dns: StartDns) -> None:
    """ClusterIP for a normal service, ready endpoint IPs for a headless one, NXDOMAIN otherwise."""
    dns_pod = await start_dns(fake_api.url)
    ip, port = "127.0.53.1", dns_pod.port
    assert dns_pod.ready()
    web = await query(ip, port, "web.default.svc.cluster.local")
    assert web.rcode() == dns.rcode.NOERROR and addresses(web) == {"10.96.0.20"}
    assert web.answer[0].ttl == 30
    model = await query(ip, port, "model.default.svc.cluster.local", tcp=True)
    assert addresses(model) == {"127.0.1.2", "127.0.1.3"}
    for name in ("nope.default.svc.cluster.local", "web.default.svc.cluster.local.default.svc.cluster.local"):
        assert (await query(ip, port, name)).rcode() == dns.rcode.NXDOMAIN
    nodata = await query(ip, port, "web.default.svc.cluster.local", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
    pod = await query(ip, port, "10-1-2-3.default.pod.cluster.local")
    assert addresses(pod) == {"10.1.2.3"}
    external = await query(ip, port, "example.com")
    assert external.rcode() == dns.rcode.SERVFAIL
    assert sample("coredns_kubernetes_api_reachable", dns_pod) == 1.0
    assert sample("coredns_dns_responses_total", dns_pod, server="dns://:53", zone=".", rcode="NXDOMAIN") == 2


async def test_watch_updates_and_relist_after_410(fake_api: FakeKubeApi, start_dns: StartDns) -> None:
    """New services appear through the watch; after a 410 the store is re-listed."""
    fake_api.put("configmaps", corefile_cm(NO_CACHE))
    dns_pod = await start_dns(fake_api.url)
    ip, port = "127.0.53.1", dns_pod.port
    fake_api.put("services", service("late", cluster_ip="10.96.0.77"))

    async def late_resolves() -> bool:
        return addresses(await query(ip, port, "late.default.svc.cluster.local")) == {"10.96.0.77"}

    await poll(late_resolves)
    assert dns_pod.store is not None
    relists = dns_pod.store.services.relists
    await fake_api.stop()
    fake_api.put("services", service("later", cluster_ip="10.96.0.78"))
    fake_api.compact()
    await fake_api.start()

    async def later_resolves() -> bool:
        return addresses(await query(ip, port, "later.default.svc.cluster.local")) == {"10.96.0.78"}

    await poll(later_resolves)
    assert dns_pod.store.services.relists > relists


async def test_store_survives_api_outage(fake_api: FakeKubeApi, start_dns: StartDns) -> None:
    """A synced replica keeps answering from its store after the API server goes away."""
    dns_pod = await start_dns(fake_api.url)
    await fake_api.stop()
    await poll(lambda: sample("coredns_kubernetes_api_reachable", dns_pod) == 0.0)
    answer = await query("127.0.53.1", dns_pod.port, "web.default.svc.cluster.local")
    assert addresses(answer) == {"10.96.0.20"}
    assert dns_pod.ready()


async def test_replica_started_during_outage_serves_servfail(
    fake_api: FakeKubeApi, start_dns: StartDns
) -> None:
    """A replica that starts while the API is down answers SERVFAIL, is not ready, and recovers on sync."""
    await fake_api.stop()
    dns_pod = await start_dns(fake_api.url, timeout=0.3)
    answer = await query("127.0.53.1", dns_pod.port, "web.default.svc.cluster.local")
    assert answer.rcode() == dns.rcode.SERVFAIL
    assert not dns_pod.ready()
    assert sample("coredns_kubernetes_api_reachable", dns_pod) == 0.0
    await fake_api.start()
    await poll(dns_pod.ready)
    answer = await query("127.0.53.1", dns_pod.port, "web.default.svc.cluster.local")
    assert addresses(answer) == {"10.96.0.20"}


async def test_corefile_edit_adds_and_removes_erratic(fake_api: FakeKubeApi, start_dns: StartDns) -> None:
    """Adding an erratic SERVFAIL+delay block for one zone takes effect; restoring the Corefile removes it."""
    fake_api.put("configmaps", corefile_cm(NO_CACHE))
    fake_api.put("services", service("other", ns="prod", cluster_ip="10.96.0.30"))
    dns_pod = await start_dns(fake_api.url)
    ip, port = "127.0.53.1", dns_pod.port
    assert (await query(ip, port, "web.default.svc.cluster.local")).rcode() == dns.rcode.NOERROR
    erratic = (
        "default.svc.cluster.local:53 {\n erratic {\n servfail 1\n delay 1 200ms\n }\n"
        " kubernetes cluster.local\n}\n" + NO_CACHE
    )
    fake_api.put("configmaps", corefile_cm(erratic))

    async def failing() -> bool:
        return (await query(ip, port, "web.default.svc.cluster.local")).rcode() == dns.rcode.SERVFAIL

    await poll(failing)
    assert addresses(await query(ip, port, "other.prod.svc.cluster.local")) == {"10.96.0.30"}
    zone = "default.svc.cluster.local."
    labels = {"server": "dns://:53", "zone": zone, "type": "A"}
    assert sample("coredns_dns_request_duration_seconds_sum", dns_pod, **labels) >= 0.2
    assert (
        sample("coredns_dns_responses_total", dns_pod, server="dns://:53", zone=zone, rcode="SERVFAIL") >= 1
    )
    fake_api.put("configmaps", corefile_cm(NO_CACHE))

    async def healed() -> bool:
        return (await query(ip, port, "web.default.svc.cluster.local")).rcode() == dns.rcode.NOERROR

    await poll(healed)
    assert sample("coredns_reload_total", dns_pod, outcome="success") == 2


async def test_bad_corefile_edit_keeps_previous(fake_api: FakeKubeApi, start_dns: StartDns) -> None:
    """A malformed Corefile edit is rejected and counted; the previous one stays in force."""
    fake_api.put("configmaps", corefile_cm(NO_CACHE))
    dns_pod = await start_dns(fake_api.url)
    assert dns_pod.corefile is not None and dns_pod.corefile.blocks[0].cache is None
    fake_api.put("configmaps", corefile_cm(".:53 {\n kubernetes {\n pods never\n }\n}"))
    await poll(lambda: sample("coredns_reload_total", dns_pod, outcome="failed") == 1)
    assert dns_pod.corefile is not None and dns_pod.corefile.blocks[0].kubernetes is not None
    assert dns_pod.corefile.blocks[0].kubernetes.ttl == 30
    answer = await query("127.0.53.1", dns_pod.port, "web.default.svc.cluster.local")
    assert addresses(answer) == {"10.96.0.20"}


async def test_malformed_corefile_at_start_fails_the_pod(fake_api: FakeKubeApi, start_dns: StartDns) -> None:
    """A replica whose Corefile does not parse fails to start (CrashLoopBackOff in a real cluster)."""
    fake_api.put("configmaps", corefile_cm(NO_CACHE + "bogus {\n"))
    with pytest.raises(CorefileError):
        await start_dns(fake_api.url)


async def test_unknown_plugin_is_counted_not_fatal(fake_api: FakeKubeApi, start_dns: StartDns) -> None:
    """An unknown plugin is ignored with a warning metric and the server still answers."""
    fake_api.put("configmaps", corefile_cm(NO_CACHE.replace(" errors\n", " rewrite name a b\n")))
    dns_pod = await start_dns(fake_api.url)
    assert sample("coredns_corefile_unknown_plugins_total", dns_pod, plugin="rewrite") == 1
    answer = await query("127.0.53.1", dns_pod.port, "web.default.svc.cluster.local")
    assert addresses(answer) == {"10.96.0.20"}


async def test_cache_hits_misses_and_serve_stale(fake_api: FakeKubeApi, start_dns: StartDns) -> None:
    """Cache hits and misses count; an expired entry is served stale (TTL 0) under serve_stale."""
    corefile = (
        ".:53 {\n kubernetes cluster.local {\n ttl 1\n }\n"
        " cache {\n success 100 1 1\n denial 100 1 1\n serve_stale 1h\n }\n}\n"
    )
    fake_api.put("configmaps", corefile_cm(corefile))
    dns_pod = await start_dns(fake_api.url)
    ip, port = "127.0.53.1", dns_pod.port
    server = {"server": "dns://:53"}
    await query(ip, port, "web.default.svc.cluster.local")
    await query(ip, port, "web.default.svc.cluster.local")
    assert sample("coredns_cache_misses_total", dns_pod, **server) == 1
    assert sample("coredns_cache_hits_total", dns_pod, type="success", **server) >= 1
    await query(ip, port, "nope.default.svc.cluster.local")
    await query(ip, port, "nope.default.svc.cluster.local")
    assert sample("coredns_cache_hits_total", dns_pod, type="denial", **server) >= 1
    stale_ttls: list[int] = []

    async def stale_served() -> bool:
        answer = await query(ip, port, "web.default.svc.cluster.local")
        if sample("coredns_cache_served_stale_total", dns_pod, **server) > 0:
            stale_ttls.append(answer.answer[0].ttl)
            return True
        return False

    await poll(stale_served, timeout=5)
    assert stale_ttls[0] == 0


async def test_kubeadm_default_without_configmap(fake_api: FakeKubeApi, start_dns: StartDns) -> None:
    """Without a ConfigMap the pod runs kubeadm's default Corefile (cache 30, ttl 30)."""
    dns_pod = await start_dns(fake_api.url)
    assert dns_pod.corefile is not None
    assert dns_pod.corefile.blocks[0].cache is not None
    assert dns_pod.corefile.blocks[0].cache.success_ttl == 30


async def test_two_replicas_and_idempotent_stop(fake_api: FakeKubeApi, start_dns: StartDns) -> None:
    """Two replicas on different pod IPs coexist in one process; stop twice is harmless and frees the port."""
    first = await start_dns(fake_api.url, ip="127.0.53.1")
    second = await start_dns(fake_api.url, ip="127.0.53.2")
    for program, ip in ((first, "127.0.53.1"), (second, "127.0.53.2")):
        assert addresses(await query(ip, program.port, "web.default.svc.cluster.local")) == {"10.96.0.20"}
    assert (
        sample(
            "coredns_dns_requests_total",
            first,
            server="dns://:53",
            zone=".",
            proto="udp",
            family="1",
            type="A",
        )
        == 1
    )
    await second.stop()
    await second.stop()
    assert not second.ready()
    with pytest.raises(dns.exception.Timeout):
        await query("127.0.53.2", second.port, "web.default.svc.cluster.local")
