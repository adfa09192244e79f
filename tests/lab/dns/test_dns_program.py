"""Tests for lab.dns.program: real DNS packets against CoreDnsProgram fed by the real API server.

Two tests use the fake API server because they need what a subprocess without persistence cannot
give: a restart on the same URL with the same state, and a forced 410 on re-watch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import dns.exception
import dns.rcode
import pytest

from lab.apiserver.testing import running_apiserver
from lab.dns.errors import CorefileError
from lab.dns.program import CoreDnsProgram
from lab.dns.testing import addresses, metric, poll, query
from tests.lab.dns.fake_kubeapi import FakeKubeApi, corefile_cm, service
from tests.lab.dns.kube_rest import Cluster, make_cluster

pytestmark = pytest.mark.anyio
StartDns = Callable[..., Awaitable[CoreDnsProgram]]
IP = "127.0.53.1"
NO_CACHE = ".:53 {\n errors\n ready\n kubernetes cluster.local {\n ttl 30\n }\n reload\n}\n"


def sample(name: str, program: CoreDnsProgram, **labels: str) -> float:
    """One metric sample of ``program``'s replica."""
    return metric(name, program.pod, **labels)


async def start_in(
    cluster: Cluster, start_dns: StartDns, corefile: str | None = None, **kw: str
) -> CoreDnsProgram:
    """Start a replica reading its Corefile from the test namespace (after writing it, if given)."""
    if corefile is not None:
        await cluster.kube.put("configmaps", corefile_cm(corefile, ns=cluster.ns))
    return await start_dns(cluster.url, cluster.env(), token=cluster.token, **kw)


async def test_answers_normal_headless_and_unknown(cluster: Cluster, start_dns: StartDns) -> None:
    """ClusterIP for a normal service, ready endpoint IPs for a headless one, NXDOMAIN otherwise."""
    dns_pod = await start_in(cluster, start_dns)
    port = dns_pod.port
    assert dns_pod.ready()
    web = await query(IP, port, cluster.name("web"))
    assert web.rcode() == dns.rcode.NOERROR and addresses(web) == {"10.96.0.20"}
    assert web.answer[0].ttl == 30
    model = await query(IP, port, cluster.name("model"), tcp=True)
    assert addresses(model) == {"127.0.1.2", "127.0.1.3"}
    search_suffixed = cluster.name("web") + f".{cluster.ns}.svc.cluster.local"
    for name in (cluster.name("nope"), search_suffixed):
        assert (await query(IP, port, name)).rcode() == dns.rcode.NXDOMAIN
    nodata = await query(IP, port, cluster.name("web"), "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
    assert addresses(await query(IP, port, f"10-1-2-3.{cluster.ns}.pod.cluster.local")) == {"10.1.2.3"}
    assert (await query(IP, port, "example.com")).rcode() == dns.rcode.SERVFAIL
    assert sample("coredns_kubernetes_api_reachable", dns_pod) == 1.0
    assert sample("coredns_dns_responses_total", dns_pod, server="dns://:53", zone=".", rcode="NXDOMAIN") == 2


async def test_watch_adds_and_removes_services(cluster: Cluster, start_dns: StartDns) -> None:
    """Services created and deleted after start-up appear and disappear through the watch."""
    dns_pod = await start_in(cluster, start_dns, NO_CACHE)
    await cluster.kube.put("services", service("late", ns=cluster.ns, cluster_ip="10.96.0.77"))

    async def resolves(expected: set[str]) -> bool:
        return addresses(await query(IP, dns_pod.port, cluster.name("late"))) == expected

    await poll(lambda: resolves({"10.96.0.77"}))
    await cluster.kube.delete("services", cluster.ns, "late")
    await poll(lambda: resolves(set()))
    assert (await query(IP, dns_pod.port, cluster.name("late"))).rcode() == dns.rcode.NXDOMAIN


async def test_relist_after_410(fake_api: FakeKubeApi, start_dns: StartDns) -> None:
    """After the API comes back with the history compacted, the watch gets 410 and the store is re-listed."""
    fake_api.put("configmaps", corefile_cm(NO_CACHE))
    dns_pod = await start_dns(fake_api.url)
    assert dns_pod.store is not None
    relists = dns_pod.store.services.relists
    await fake_api.stop()
    fake_api.put("services", service("later", cluster_ip="10.96.0.78"))
    fake_api.compact()
    await fake_api.start()

    async def later_resolves() -> bool:
        return addresses(await query(IP, dns_pod.port, "later.default.svc.cluster.local")) == {"10.96.0.78"}

    await poll(later_resolves)
    assert dns_pod.store.services.relists > relists


async def test_store_survives_api_outage(tmp_path: Path, start_dns: StartDns) -> None:
    """A synced replica keeps answering from its store (and stays ready) after the API server dies."""
    with running_apiserver(tmp_path, service_accounts=[("kube-system", "coredns")]) as api:
        cluster = await make_cluster(api)
        try:
            dns_pod = await start_in(cluster, start_dns)
        finally:
            await cluster.kube.close()
        assert sample("coredns_kubernetes_api_reachable", dns_pod) == 1.0
    await poll(lambda: sample("coredns_kubernetes_api_reachable", dns_pod) == 0.0)
    assert addresses(await query(IP, dns_pod.port, cluster.name("web"))) == {"10.96.0.20"}
    assert addresses(await query(IP, dns_pod.port, cluster.name("model"))) == {"127.0.1.2", "127.0.1.3"}
    assert dns_pod.ready()


async def test_replica_started_during_outage_serves_servfail(
    fake_api: FakeKubeApi, start_dns: StartDns
) -> None:
    """A replica that starts while the API is down answers SERVFAIL, is not ready, and recovers on sync."""
    await fake_api.stop()
    dns_pod = await start_dns(fake_api.url, timeout=0.3)
    answer = await query(IP, dns_pod.port, "web.default.svc.cluster.local")
    assert answer.rcode() == dns.rcode.SERVFAIL
    assert not dns_pod.ready()
    assert sample("coredns_kubernetes_api_reachable", dns_pod) == 0.0
    await fake_api.start()
    await poll(dns_pod.ready)
    answer = await query(IP, dns_pod.port, "web.default.svc.cluster.local")
    assert addresses(answer) == {"10.96.0.20"}


async def test_corefile_edit_adds_and_removes_erratic(cluster: Cluster, start_dns: StartDns) -> None:
    """Adding an erratic SERVFAIL+delay block for one zone takes effect; restoring the Corefile removes it."""
    other = await cluster.kube.namespace("other")
    await cluster.kube.put("services", service("api", ns=other, cluster_ip="10.96.0.30"))
    dns_pod = await start_in(cluster, start_dns, NO_CACHE)
    port, zone = dns_pod.port, f"{cluster.ns}.svc.cluster.local."
    assert (await query(IP, port, cluster.name("web"))).rcode() == dns.rcode.NOERROR
    erratic = f"{zone}:53 {{\n erratic {{\n servfail 1\n delay 1 200ms\n }}\n kubernetes cluster.local\n}}\n"
    await cluster.kube.put("configmaps", corefile_cm(erratic + NO_CACHE, ns=cluster.ns))

    async def rcode_is(code: dns.rcode.Rcode) -> bool:
        return (await query(IP, port, cluster.name("web"))).rcode() == code

    await poll(lambda: rcode_is(dns.rcode.SERVFAIL))
    assert addresses(await query(IP, port, f"api.{other}.svc.cluster.local")) == {"10.96.0.30"}
    labels = {"server": "dns://:53", "zone": zone, "type": "A"}
    assert sample("coredns_dns_request_duration_seconds_sum", dns_pod, **labels) >= 0.2
    assert (
        sample("coredns_dns_responses_total", dns_pod, server="dns://:53", zone=zone, rcode="SERVFAIL") >= 1
    )
    await cluster.kube.put("configmaps", corefile_cm(NO_CACHE, ns=cluster.ns))
    await poll(lambda: rcode_is(dns.rcode.NOERROR))
    assert sample("coredns_reload_total", dns_pod, outcome="success") == 2


async def test_reload_plugin_off_ignores_edits(cluster: Cluster, start_dns: StartDns) -> None:
    """Without the `reload` plugin a Corefile edit is not applied."""
    dns_pod = await start_in(cluster, start_dns, NO_CACHE.replace(" reload\n", ""))
    await cluster.kube.put("configmaps", corefile_cm(".:53 {\n erratic {\n servfail 1\n }\n}", ns=cluster.ns))
    await cluster.kube.put("services", service("marker", ns=cluster.ns, cluster_ip="10.96.0.55"))

    async def marker_seen() -> bool:
        return addresses(await query(IP, dns_pod.port, cluster.name("marker"))) == {"10.96.0.55"}

    await poll(marker_seen)  # the watch delivered later events, yet the Corefile stayed
    assert dns_pod.corefile is not None and dns_pod.corefile.blocks[0].erratic is None


async def test_bad_corefile_edit_keeps_previous(cluster: Cluster, start_dns: StartDns) -> None:
    """A malformed Corefile edit is rejected and counted; the previous one stays in force."""
    dns_pod = await start_in(cluster, start_dns, NO_CACHE)
    assert dns_pod.corefile is not None and dns_pod.corefile.blocks[0].cache is None
    await cluster.kube.put(
        "configmaps", corefile_cm(".:53 {\n kubernetes {\n pods never\n }\n}", ns=cluster.ns)
    )
    await poll(lambda: sample("coredns_reload_total", dns_pod, outcome="failed") == 1)
    assert dns_pod.corefile is not None and dns_pod.corefile.blocks[0].kubernetes is not None
    assert dns_pod.corefile.blocks[0].kubernetes.ttl == 30
    assert addresses(await query(IP, dns_pod.port, cluster.name("web"))) == {"10.96.0.20"}


async def test_malformed_corefile_at_start_fails_the_pod(cluster: Cluster, start_dns: StartDns) -> None:
    """A replica whose Corefile does not parse fails to start (CrashLoopBackOff in a real cluster)."""
    with pytest.raises(CorefileError):
        await start_in(cluster, start_dns, NO_CACHE + "bogus {\n")


async def test_unknown_plugin_is_counted_not_fatal(cluster: Cluster, start_dns: StartDns) -> None:
    """An unknown plugin is ignored with a warning metric and the server still answers."""
    dns_pod = await start_in(cluster, start_dns, NO_CACHE.replace(" errors\n", " rewrite name a b\n"))
    assert sample("coredns_corefile_unknown_plugins_total", dns_pod, plugin="rewrite") == 1
    assert addresses(await query(IP, dns_pod.port, cluster.name("web"))) == {"10.96.0.20"}


async def test_cache_hits_misses_and_serve_stale(cluster: Cluster, start_dns: StartDns) -> None:
    """Cache hits and misses count; an expired entry is served stale (TTL 0) under serve_stale."""
    corefile = (
        ".:53 {\n kubernetes cluster.local {\n ttl 1\n }\n"
        " cache {\n success 100 1 1\n denial 100 1 1\n serve_stale 1h\n }\n}\n"
    )
    dns_pod = await start_in(cluster, start_dns, corefile)
    port, server = dns_pod.port, {"server": "dns://:53"}
    for _ in range(2):
        await query(IP, port, cluster.name("web"))
    assert sample("coredns_cache_misses_total", dns_pod, **server) == 1
    assert sample("coredns_cache_hits_total", dns_pod, type="success", **server) >= 1
    for _ in range(2):
        await query(IP, port, cluster.name("nope"))
    assert sample("coredns_cache_hits_total", dns_pod, type="denial", **server) >= 1
    stale_ttls: list[int] = []

    async def stale_served() -> bool:
        answer = await query(IP, port, cluster.name("web"))
        if sample("coredns_cache_served_stale_total", dns_pod, **server) > 0:
            stale_ttls.append(answer.answer[0].ttl)
            return True
        return False

    await poll(stale_served, timeout=5)
    assert stale_ttls[0] == 0


async def test_kubeadm_default_without_configmap(cluster: Cluster, start_dns: StartDns) -> None:
    """Without a ConfigMap the pod runs kubeadm's default Corefile (cache 30, ttl 30)."""
    dns_pod = await start_in(cluster, start_dns)
    assert dns_pod.corefile is not None and dns_pod.corefile.blocks[0].cache is not None
    assert dns_pod.corefile.blocks[0].cache.success_ttl == 30


async def test_two_replicas_and_idempotent_stop(cluster: Cluster, start_dns: StartDns) -> None:
    """Two replicas on different pod IPs coexist in one process; stop twice is harmless and frees the port."""
    first = await start_dns(cluster.url, cluster.env(), ip="127.0.53.1", token=cluster.token)
    second = await start_dns(cluster.url, cluster.env(), ip="127.0.53.2", token=cluster.token)
    for program, ip in ((first, "127.0.53.1"), (second, "127.0.53.2")):
        assert addresses(await query(ip, program.port, cluster.name("web"))) == {"10.96.0.20"}
    labels = {"server": "dns://:53", "zone": ".", "proto": "udp", "family": "1", "type": "A"}
    assert sample("coredns_dns_requests_total", first, **labels) == 1
    await second.stop()
    await second.stop()
    assert not second.ready()
    with pytest.raises(dns.exception.Timeout):
        await query("127.0.53.2", second.port, cluster.name("web"), timeout=0.3)
