"""Tests for lab.dns.cache: TTL capping, expiry, serve_stale and capacity."""

from __future__ import annotations

from dnslib import QTYPE, RCODE, RR, A  # type: ignore[import-untyped]

from lab.dns.cache import DnsCache
from lab.dns.corefile import CacheConfig
from lab.dns.kubernetes import Answer


class Clock:
    """A settable clock for the cache."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def positive(ttl: int = 30) -> Answer:
    """A one-record NOERROR answer."""
    return Answer(RCODE.NOERROR, [RR("a.default.svc.cluster.local.", QTYPE.A, ttl=ttl, rdata=A("10.0.0.1"))])


def test_ttl_is_capped_and_counts_down() -> None:
    """A 30 s record under `cache 10` is served with the remaining capped TTL, then expires."""
    clock = Clock()
    cache = DnsCache(CacheConfig(success_ttl=10, denial_ttl=10), clock)
    cache.put(("a", 1), positive(30))
    clock.now += 4
    hit = cache.get(("a", 1))
    assert hit is not None and not hit.stale and hit.answer.answers[0].ttl == 6
    clock.now += 7
    assert cache.get(("a", 1)) is None and not cache.success


def test_serve_stale_window() -> None:
    """With serve_stale an expired entry is returned as stale with TTL 0 until the window ends."""
    clock = Clock()
    cache = DnsCache(CacheConfig(success_ttl=5, serve_stale_s=60.0), clock)
    cache.put(("a", 1), positive(30))
    clock.now += 30
    hit = cache.get(("a", 1))
    assert hit is not None and hit.stale and hit.answer.answers[0].ttl == 0
    clock.now += 60
    assert cache.get(("a", 1)) is None


def test_denials_cached_servfail_not() -> None:
    """NXDOMAIN is cached in the denial bucket; SERVFAIL is never cached."""
    cache = DnsCache(CacheConfig(), Clock())
    cache.put(("n", 1), Answer(RCODE.NXDOMAIN))
    cache.put(("s", 1), Answer(RCODE.SERVFAIL))
    hit = cache.get(("n", 1))
    assert hit is not None and hit.denial and hit.answer.rcode == RCODE.NXDOMAIN
    assert cache.get(("s", 1)) is None


def test_capacity_evicts_oldest() -> None:
    """A full bucket evicts its oldest entry."""
    cache = DnsCache(CacheConfig(success_capacity=2), Clock())
    for name in ("a", "b", "c"):
        cache.put((name, 1), positive())
    assert set(cache.success) == {("b", 1), ("c", 1)}


def test_disable_success_for_cluster_zone() -> None:
    """`disable success cluster.local` (newer kubeadm) keeps cluster answers out of the cache only."""
    cache = DnsCache(CacheConfig(disable_success=("cluster.local",)), Clock())
    cache.put(("a.default.svc.cluster.local", 1), positive())
    cache.put(("example.org", 1), positive())
    cache.put(("b.default.svc.cluster.local", 1), Answer(RCODE.NXDOMAIN))
    assert set(cache.success) == {("example.org", 1)}
    assert set(cache.denial) == {("b.default.svc.cluster.local", 1)}
