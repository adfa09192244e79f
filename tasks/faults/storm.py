"""The client-storm load generator: cluster-wide LISTs without resourceVersion at a target rate, asyncio + aiohttp (or a bare protocol).

Runs as its own process (``python -m tasks.faults.storm --tag TAG``, configuration as one JSON line on
stdin so the bearer token never appears in argv or the ledger). Open loop: requests start on a schedule
(rate ramped up linearly over ``ramp_up_s``) with at most ``concurrency`` in flight; achieved rate,
latency percentiles, status codes and 429s are written atomically to ``stats_path`` every second and at
exit. SIGTERM/SIGINT stop it; it also stops by itself after ``max_seconds``, and within ``PARENT_CHECK_S`` of its
parent's death (the runner that started it was killed: reparented, it sees another parent), so a storm never
outlives its runner by more than a second. Before the storm it times a
few serial LISTs as a baseline. The ``--tag`` lets a fresh process (reconcile) find and stop it. ``client: protocol``
swaps aiohttp for the bare asyncio.Protocol client of ``storm_protocol.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal, TypedDict

import aiohttp
from pydantic import BaseModel, ConfigDict

from tasks.faults.storm_protocol import ProtocolClient
from tasks.files import write_atomic

BASELINE_SAMPLES = 5
PARENT_CHECK_S = 0.5
"""How often the storm process looks whether the process that started it is still its parent."""
_MAX_LATENCIES = 200_000


class StormConfig(BaseModel):
    """What one storm process does."""

    model_config = ConfigDict(extra="forbid")

    url: str
    token: str | None = None
    verify: bool = True
    ca_cert: str | None = None
    resource: str = "pods"
    rate: float = 50.0
    concurrency: int = 16
    ramp_up_s: float = 5.0
    watch_churn: bool = False
    max_seconds: float = 900.0
    stats_path: str
    identity: str = ""
    client: Literal["aiohttp", "protocol"] = "aiohttp"
    parent_pid: int | None = None
    """The process that started the storm (set by ``start_storm``: the storm may start after its parent died)."""


class StormStats(TypedDict, total=False):
    """What a storm writes to its stats file every second (every key is there once it has written; a reader
    before the first write has none)."""

    pid: int
    started_at: float
    elapsed_s: float
    done: bool
    target_rate: float
    concurrency: int
    resource: str
    identity: str
    client: str
    sent: int
    completed: int
    achieved_rate: float
    codes: dict[str, int]
    """Requests per HTTP status code."""
    throttled_429: int
    errors: int
    """Requests that got no answer (a transport error)."""
    p50_ms: float
    p90_ms: float
    p99_ms: float
    baseline_p50_ms: float
    """The median of the serial LISTs timed before the storm."""
    watches: int


def _insecure() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def list_path(resource: str) -> str:
    """The cluster-wide LIST path of a core/v1 resource (no resourceVersion: a quorum read)."""
    return f"/api/v1/{resource}"


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-quantile (0..1) of already sorted values, nearest rank (0 for none)."""
    if not sorted_values:
        return 0.0
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[idx]


class Stats:
    """Counters and latencies of one storm."""

    def __init__(self, cfg: StormConfig) -> None:
        self.cfg = cfg
        self.started = time.monotonic()
        self.started_at = time.time()
        self.sent = 0
        self.codes: dict[str, int] = {}
        self.errors = 0
        self.latencies: list[float] = []
        self.baseline: list[float] = []
        self.watches = 0
        self.done = False

    def record(self, status: int | None, latency: float) -> None:
        """Count one finished request (status None: a transport error)."""
        if status is None:
            self.errors += 1
        else:
            self.codes[str(status)] = self.codes.get(str(status), 0) + 1
        if len(self.latencies) < _MAX_LATENCIES:
            self.latencies.append(latency)

    def snapshot(self) -> StormStats:
        """The stats as JSON-ready data."""
        elapsed = time.monotonic() - self.started
        lat = sorted(self.latencies)
        base = sorted(self.baseline)
        completed = sum(self.codes.values()) + self.errors
        return {
            "pid": os.getpid(), "started_at": self.started_at, "elapsed_s": round(elapsed, 3), "done": self.done,
            "target_rate": self.cfg.rate, "concurrency": self.cfg.concurrency, "resource": self.cfg.resource,
            "identity": self.cfg.identity, "client": self.cfg.client, "sent": self.sent, "completed": completed,
            "achieved_rate": round(completed / elapsed, 2) if elapsed > 0 else 0.0,
            "codes": dict(self.codes), "throttled_429": self.codes.get("429", 0), "errors": self.errors,
            "p50_ms": round(percentile(lat, 0.5) * 1000, 2), "p90_ms": round(percentile(lat, 0.9) * 1000, 2),
            "p99_ms": round(percentile(lat, 0.99) * 1000, 2),
            "baseline_p50_ms": round(percentile(base, 0.5) * 1000, 2), "watches": self.watches,
        }

    def write(self) -> None:
        """Write the snapshot atomically to the stats path."""
        write_atomic(Path(self.cfg.stats_path), json.dumps(self.snapshot()))


async def _one(send: Callable[[], Awaitable[int | None]], stats: Stats, sem: asyncio.Semaphore | None) -> float:
    start = time.monotonic()
    try:
        status = await send()
    finally:
        if sem is not None:
            sem.release()
    latency = time.monotonic() - start
    stats.record(status, latency)
    return latency


def _aiohttp_sender(session: aiohttp.ClientSession, url: str,
                    headers: dict[str, str]) -> Callable[[], Awaitable[int | None]]:
    async def send() -> int | None:
        try:
            async with session.get(url, headers=headers) as resp:
                await resp.read()
                return resp.status
        except (TimeoutError, aiohttp.ClientError, OSError):
            return None

    return send


async def _watch_churn(session: aiohttp.ClientSession, url: str, headers: dict[str, str], stats: Stats,
                       stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, OSError):
            async with session.get(url, headers=headers, params={"watch": "1", "timeoutSeconds": "1"}) as resp:
                stats.watches += 1
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(resp.content.read(65536), timeout=0.5)
        await asyncio.sleep(0.05)


async def run_storm(cfg: StormConfig, stop: asyncio.Event) -> Stats:
    """Run the storm until ``stop`` is set or max_seconds pass; returns the final stats."""
    stats = Stats(cfg)
    headers = {"Accept": "application/json", "User-Agent": "gameday-storm"}
    if cfg.token:
        headers["Authorization"] = f"Bearer {cfg.token}"
    ssl_ctx: ssl.SSLContext | bool = False
    if cfg.url.startswith("https"):
        ssl_ctx = ssl.create_default_context(cafile=cfg.ca_cert) if cfg.verify else _insecure()
    url = cfg.url.rstrip("/") + list_path(cfg.resource)
    conn = aiohttp.TCPConnector(limit=cfg.concurrency + 4, ssl=ssl_ctx)
    timeout = aiohttp.ClientTimeout(total=60)
    proto_ssl = ssl_ctx if isinstance(ssl_ctx, ssl.SSLContext) else None
    proto = ProtocolClient(cfg.url, list_path(cfg.resource), cfg.token, cfg.concurrency,
                           proto_ssl) if cfg.client == "protocol" else None
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        send = proto.get if proto is not None else _aiohttp_sender(session, url, headers)
        for _ in range(BASELINE_SAMPLES):
            stats.baseline.append(await _one(send, Stats(cfg), None))
        stats.started = time.monotonic()
        sem = asyncio.Semaphore(cfg.concurrency)
        tasks: set[asyncio.Task[Any]] = set()
        if cfg.watch_churn:
            tasks.add(asyncio.create_task(_watch_churn(session, url, headers, stats, stop)))
        next_write = time.monotonic() + 1.0
        deadline = stats.started + cfg.max_seconds
        issued = 0.0
        while not stop.is_set() and time.monotonic() < deadline:
            now = time.monotonic()
            t = now - stats.started
            ramp = cfg.ramp_up_s
            # requests due by t under a linear ramp to `rate` over `ramp` seconds
            due = cfg.rate * (t * t / (2 * ramp) if t < ramp else t - ramp / 2) if ramp > 0 else cfg.rate * t
            while issued < due and not stop.is_set():
                await sem.acquire()
                issued += 1
                stats.sent += 1
                task = asyncio.create_task(_one(send, stats, sem))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if now >= next_write:
                stats.write()
                next_write = now + 1.0
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.005)
        stop.set()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if proto is not None:
            proto.close()
    stats.done = True
    stats.write()
    return stats


def main(argv: list[str]) -> int:
    """Entry point of the storm process: read the config from stdin, run until signalled."""
    if "--tag" not in argv:
        print("usage: python -m tasks.faults.storm --tag TAG  (config JSON on stdin)", file=sys.stderr)
        return 2
    cfg = StormConfig.model_validate_json(sys.stdin.readline())

    parent = cfg.parent_pid or os.getppid()

    async def orphaned(stop: asyncio.Event) -> None:
        while not stop.is_set():
            if os.getppid() != parent:  # the runner died: the storm goes with it
                stop.set()
                return
            await asyncio.sleep(PARENT_CHECK_S)

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        watcher = asyncio.create_task(orphaned(stop))
        try:
            await run_storm(cfg, stop)
        finally:
            watcher.cancel()

    asyncio.run(_main())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
