"""A client-side DNS cache over dnspython's async resolver, like a pod's libc+app cache.

Answers are kept for their TTL (optionally capped); failures are never cached and never fall
back to an expired entry, so when DNS breaks, clients fail as soon as their entries expire.
Like glibc (resolv.conf ``options timeout:N attempts:M``), an unanswered query is sent again, up to
``attempts`` tries of ``timeout`` seconds each; a SERVFAIL or NXDOMAIN answer is final.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import dns.asyncresolver
import dns.exception
import dns.resolver

from lab.workload.errors import DnsLookupError


class CachingResolver:
    """Resolve A records through one DNS server, caching answers for their TTL."""

    def __init__(
        self,
        server: tuple[str, int],
        timeout: float = 2.0,
        ttl_cap: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        attempts: int = 2,
    ) -> None:
        self._resolver = dns.asyncresolver.Resolver(configure=False)
        self._resolver.nameservers = [server[0]]
        self._resolver.port = server[1]
        self._resolver.timeout = timeout
        self._resolver.lifetime = timeout * max(attempts, 1)
        self._ttl_cap = ttl_cap
        self._clock = clock
        self._cache: dict[str, tuple[list[str], float]] = {}

    async def resolve(self, name: str) -> tuple[list[str], str]:
        """Addresses of ``name`` and the lookup result (``cache_hit`` or ``ok``).

        Raises ``DnsLookupError`` with result ``nxdomain``, ``nodata``, ``servfail``, ``timeout``
        or ``error``.
        """
        now = self._clock()
        cached = self._cache.get(name)
        if cached is not None and cached[1] > now:
            return cached[0], "cache_hit"
        self._cache.pop(name, None)
        try:
            answer = await self._resolver.resolve(name, "A", search=False)
        except dns.resolver.NXDOMAIN:
            raise DnsLookupError(name, "nxdomain") from None
        except dns.resolver.NoAnswer:
            raise DnsLookupError(name, "nodata") from None
        except dns.resolver.NoNameservers:
            raise DnsLookupError(name, "servfail") from None
        except dns.exception.Timeout:
            raise DnsLookupError(name, "timeout") from None
        except dns.exception.DNSException:
            raise DnsLookupError(name, "error") from None
        addresses = [str(rr.address) for rr in answer]
        ttl = float(answer.rrset.ttl) if answer.rrset is not None else 0.0
        if self._ttl_cap is not None:
            ttl = min(ttl, self._ttl_cap)
        if ttl > 0:
            self._cache[name] = (addresses, now + ttl)
        return addresses, "ok"
