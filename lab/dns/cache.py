"""The cache plugin: positive and negative answers kept for their (capped) TTL, plus serve_stale.

Entries are keyed by (name, type). A fresh entry is served with its remaining TTL; an expired one,
while ``serve_stale`` allows, is served with TTL 0. SERVFAIL and REFUSED are never cached.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from dnslib import RCODE, RR  # type: ignore[import-untyped]

from lab.dns.corefile import CacheConfig
from lab.dns.kubernetes import Answer, match_zone

CacheKey = tuple[str, int]


@dataclass(frozen=True)
class CacheEntry:
    """One cached answer and when it was stored."""

    answer: Answer
    stored: float
    ttl: float


@dataclass(frozen=True)
class CacheLookup:
    """A cache hit: the answer with TTLs rewritten, and whether it was stale."""

    answer: Answer
    stale: bool
    denial: bool


def _min_ttl(answer: Answer) -> int | None:
    ttls = [rr.ttl for rr in answer.answers + answer.authority]
    return min(ttls) if ttls else None


def _with_ttl(answer: Answer, ttl: int) -> Answer:
    def fix(rrs: list[RR]) -> list[RR]:
        return [RR(rr.rname, rr.rtype, rr.rclass, ttl=min(rr.ttl, ttl), rdata=rr.rdata) for rr in rrs]

    return Answer(answer.rcode, fix(answer.answers), fix(answer.authority))


class DnsCache:
    """A bounded answer cache following a ``CacheConfig``."""

    def __init__(self, config: CacheConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self.success: dict[CacheKey, CacheEntry] = {}
        self.denial: dict[CacheKey, CacheEntry] = {}

    def get(self, key: CacheKey) -> CacheLookup | None:
        """A fresh (or, with serve_stale, stale) answer for ``key``, or None on a miss."""
        for bucket, denial in ((self.success, False), (self.denial, True)):
            entry = bucket.get(key)
            if entry is None:
                continue
            age = self._clock() - entry.stored
            if age < entry.ttl:
                return CacheLookup(_with_ttl(entry.answer, max(0, int(entry.ttl - age))), False, denial)
            stale = self.config.serve_stale_s
            if stale is not None and age < entry.ttl + stale:
                return CacheLookup(_with_ttl(entry.answer, 0), True, denial)
            del bucket[key]
        return None

    def put(self, key: CacheKey, answer: Answer) -> None:
        """Cache ``answer`` if its rcode is cacheable, with its TTL capped as configured."""
        if answer.rcode not in (RCODE.NOERROR, RCODE.NXDOMAIN):
            return
        cfg = self.config
        disabled = cfg.disable_denial if answer.denial else cfg.disable_success
        if disabled and match_zone(key[0], disabled) is not None:
            return
        if answer.denial:
            bucket, cap, max_ttl, min_ttl = (
                self.denial,
                cfg.denial_capacity,
                cfg.denial_ttl,
                cfg.denial_min_ttl,
            )
        else:
            bucket, cap, max_ttl, min_ttl = (
                self.success,
                cfg.success_capacity,
                cfg.success_ttl,
                cfg.success_min_ttl,
            )
        ttl = _min_ttl(answer)
        ttl = max_ttl if ttl is None else min(ttl, max_ttl)
        ttl = max(ttl, min(min_ttl, max_ttl))
        if ttl <= 0 or cap <= 0:
            return
        bucket.pop(key, None)
        while len(bucket) >= cap:
            bucket.pop(next(iter(bucket)))
        bucket[key] = CacheEntry(answer, self._clock(), float(ttl))
        (self.denial if bucket is self.success else self.success).pop(key, None)

    def clear(self) -> None:
        """Drop every entry."""
        self.success.clear()
        self.denial.clear()
