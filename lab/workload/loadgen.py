"""``LoadGenProgram``: the ``lab/loadgen`` pod, an open-loop request source.

Sends ``RATE`` requests per second to ``TARGET_URL`` on a fixed schedule whatever the latency
(open loop), with at most ``MAX_INFLIGHT`` requests in flight: a tick that finds the limit
reached is counted as ``dropped``. Outcomes: ``ok``, ``http_4xx``, ``http_5xx``, ``timeout``,
``connect``, ``dropped``.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from lab.pods import PodContext
from lab.workload import metrics
from lab.workload.settings import LoadGenSettings

MAX_LAG_S = 1.0


def outcome_of(status: int) -> str:
    """The outcome label of an HTTP status."""
    if status < 400:
        return "ok"
    return "http_4xx" if status < 500 else "http_5xx"


class LoadGenProgram:
    """Open-loop HTTP load at a steady rate."""

    def __init__(self) -> None:
        self._settings = LoadGenSettings.from_env({})
        self._pod = ""
        self._session: aiohttp.ClientSession | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self.sent = 0

    async def start(self, ctx: PodContext) -> None:
        """Start the send loop; returns at once."""
        self._settings = LoadGenSettings.from_env(ctx.env)
        self._pod = ctx.name
        limit = self._settings.max_inflight
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit))
        self._loop_task = asyncio.create_task(self._run(), name=f"loadgen {ctx.name}")

    async def _run(self) -> None:
        interval = 1.0 / self._settings.rate
        body = json.dumps({"prompt": f"hello from {self._pod}"}).encode()
        next_at = time.monotonic()
        while True:
            now = time.monotonic()
            if now - next_at > MAX_LAG_S:
                next_at = now
            if next_at > now:
                await asyncio.sleep(next_at - now)
            next_at += interval
            if len(self._inflight) >= self._settings.max_inflight:
                metrics.LOADGEN_REQUESTS.labels(self._pod, "dropped").inc()
                continue
            task = asyncio.create_task(self._send(body))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _send(self, body: bytes) -> None:
        assert self._session is not None
        started = time.perf_counter()
        timeout = aiohttp.ClientTimeout(total=self._settings.request_timeout)
        self.sent += 1
        try:
            async with self._session.post(
                self._settings.target_url,
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=timeout,
            ) as resp:
                await resp.read()
                outcome = outcome_of(resp.status)
        except TimeoutError:
            outcome = "timeout"
        except aiohttp.ClientError:
            outcome = "connect"
        metrics.LOADGEN_REQUESTS.labels(self._pod, outcome).inc()
        metrics.LOADGEN_DURATION.labels(self._pod).observe(time.perf_counter() - started)

    def ready(self) -> bool:
        """Ready while the send loop runs."""
        return self._loop_task is not None and not self._loop_task.done()

    async def stop(self) -> None:
        """Cancel the loop and every in-flight request, close the pool; idempotent."""
        tasks = [t for t in (self._loop_task, *self._inflight) if t is not None]
        self._loop_task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()
