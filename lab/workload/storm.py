"""``ListStormProgram``: the ``lab/list-storm`` pod, the 2024-12-11 telemetry service.

A loop of cluster-wide LISTs without ``resourceVersion`` (quorum reads that skip the watch
cache), ``RATE`` per second shared by ``CONCURRENCY`` workers, against ``ctx.api_url`` with the
pod's token. Like client-go it honours ``429`` + ``Retry-After`` (capped by ``MAX_RETRY_AFTER``):
the worker that got it waits that long before its next request; when the server cannot be reached it
backs off like a client-go reflector (``BACKOFF_INITIAL`` 0.8 s doubling up to ``BACKOFF_MAX`` 30 s, with
up to 100 % jitter), and a success resets the back-off. ``WATCH_CHURN=1`` also opens a
watch after every LIST and drops it as soon as the server answers.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time

import aiohttp

from lab.pods import PodContext
from lab.workload import metrics
from lab.workload.settings import ListStormSettings

GROUPS = {
    "deployments": "apps/v1",
    "daemonsets": "apps/v1",
    "replicasets": "apps/v1",
    "statefulsets": "apps/v1",
    "leases": "coordination.k8s.io/v1",
    "networkpolicies": "networking.k8s.io/v1",
    "poddisruptionbudgets": "policy/v1",
}


def collection_path(resource: str) -> str:
    """The cluster-wide collection path of ``resource`` (``pods``, ``apps/v1/deployments``...)."""
    resource = resource.strip("/")
    if resource.count("/") == 2:
        return f"/apis/{resource}"
    if resource.startswith("v1/"):
        return f"/api/{resource}"
    group = GROUPS.get(resource)
    return f"/apis/{group}/{resource}" if group else f"/api/v1/{resource}"


def retry_after_of(resp: aiohttp.ClientResponse, cap: float) -> float | None:
    """Seconds to wait before the next request (client-go: 429, or 5xx with Retry-After)."""
    header = resp.headers.get("Retry-After")
    if resp.status != 429 and not (resp.status >= 500 and header):
        return None
    try:
        seconds = float(header) if header else 1.0
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.0), cap)


class _Pacer:
    """Hands out send times ``1/rate`` apart, never accumulating a backlog."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_at = time.monotonic()

    def delay(self) -> float:
        now = time.monotonic()
        at = max(self.next_at, now)
        self.next_at = at + self.interval
        return at - now


class ListStormProgram:
    """Expensive cluster-wide LISTs at a steady rate."""

    def __init__(self) -> None:
        self._settings = ListStormSettings.from_env({})
        self._pod = ""
        self._url = ""
        self._session: aiohttp.ClientSession | None = None
        self._workers: list[asyncio.Task[None]] = []
        self.retry_waits: list[float] = []
        self._backoff = 0.0

    async def start(self, ctx: PodContext) -> None:
        """Start the workers; returns at once."""
        self._settings = s = ListStormSettings.from_env(ctx.env)
        self._pod = ctx.name
        self._url = ctx.api_url.rstrip("/") + collection_path(s.resource)
        headers = {
            "Authorization": f"Bearer {ctx.api_token}",
            "Accept": "application/json",
            "User-Agent": f"list-storm/{ctx.name}",
        }
        # an HTTPS API server (the real control plane) is trusted through the pod's CA, as client-go's in-cluster
        # configuration trusts the service account's ca.crt
        tls = ssl.create_default_context(cafile=ctx.api_ca_file) if ctx.api_ca_file else None
        self._session = aiohttp.ClientSession(headers=headers,
                                              connector=aiohttp.TCPConnector(ssl=tls) if tls is not None else None)
        pacer = _Pacer(s.rate)
        self._workers = [
            asyncio.create_task(self._worker(pacer), name=f"list-storm {ctx.name} #{i}")
            for i in range(s.concurrency)
        ]

    async def _worker(self, pacer: _Pacer) -> None:
        while True:
            await asyncio.sleep(pacer.delay())
            wait = await self._list()
            if wait is None and self._settings.watch_churn:
                await self._churn()
            if wait is not None:
                self.retry_waits.append(wait)
                await asyncio.sleep(wait)

    async def _list(self) -> float | None:
        assert self._session is not None
        started = time.perf_counter()
        timeout = aiohttp.ClientTimeout(total=self._settings.request_timeout)
        try:
            async with self._session.get(self._url, timeout=timeout) as resp:
                await resp.read()
                code, wait = str(resp.status), retry_after_of(resp, self._settings.max_retry_after)
            self._backoff = 0.0
        except TimeoutError:
            code, wait = "timeout", None
        except aiohttp.ClientError:
            code, wait = "error", self._next_backoff()
        metrics.STORM_REQUESTS.labels(self._pod, code).inc()
        metrics.STORM_DURATION.labels(self._pod).observe(time.perf_counter() - started)
        return wait

    def _next_backoff(self) -> float:
        """client-go's reflector back-off: 0.8 s doubling to 30 s, jittered by up to 100 %."""
        s = self._settings
        self._backoff = min(s.backoff_max, self._backoff * 2) if self._backoff else s.backoff_initial
        return self._backoff * (1.0 + random.random())

    async def _churn(self) -> None:
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=self._settings.request_timeout)
        try:
            async with self._session.get(self._url, params={"watch": "true"}, timeout=timeout) as resp:
                code = str(resp.status)
        except TimeoutError:
            code = "timeout"
        except aiohttp.ClientError:
            code = "error"
        metrics.STORM_WATCHES.labels(self._pod, code).inc()

    def ready(self) -> bool:
        """Ready while the workers run."""
        return bool(self._workers) and not all(w.done() for w in self._workers)

    async def stop(self) -> None:
        """Cancel the workers and close the connection pool; idempotent."""
        workers, self._workers = self._workers, []
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()
