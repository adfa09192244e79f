"""A GPU health monitor in the manner of NVSentinel's syslog monitor: kernel-log XIDs → catalogue action.

``python -m lab.gpu.monitor --api URL --token-file F --kmsg NODE=PATH [...] [--listen 127.0.0.1:0]
[--ready-file F]`` tails each node's kernel-log file, parses XIDs with the driver
regex, applies the catalogue action through the API server (``lab.gpu.remediation``), and serves
Prometheus metrics on ``/metrics``. Durations are real seconds (the lab compresses through ``--reboot-seconds``
and ``--dedup-window``, not a time scale):

- ``gpu_monitor_xid_detected_total{node,code}``: XID lines seen.
- ``gpu_monitor_detection_seconds``: from the line's time to the monitor reading it.
- ``gpu_monitor_remediation_seconds{action}``: from the line's time to the action being done.
- ``gpu_monitor_nodes_cordoned``: nodes this monitor cordoned that are still unschedulable.
- ``gpu_monitor_last_recovery_seconds{node}``: XID line to the rebooted node uncordoned (with ``--runtime-url``).
- ``gpu_monitor_gpu_pods_running{node}``: Running pods that use GPUs, per node (refreshed every 2 s).
- ``gpu_monitor_last_detection_seconds{node}``, ``gpu_monitor_last_remediation_seconds{node,action}``: the
  latest XID's times, as gauges (easier to chart and to write expectations on than sparse histograms).
- ``gpu_monitor_actions_total{node,action,code}`` (code: the XID that asked for the action),
  ``gpu_monitor_pods_restarted_total``, ``gpu_monitor_pods_evicted_total``,
  ``gpu_monitor_remediation_failures_total{action}``, ``gpu_monitor_node_gpu_healthy{node}``.
The same XID (node, code, PCI) within ``dedup_window_s`` seconds is counted but acted on once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import ssl
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    generate_latest,
)

from lab.errors import ApiStatusError
from lab.gpu.errors import RemediationError
from lab.gpu.monitor_metrics import MonitorMetrics
from lab.gpu.remediation import Remediator, uses_gpu
from lab.gpu.xid import KmsgTail, XidEvent, action_for
from lab.runtime.client import ApiClient


@dataclass(frozen=True)
class MonitorConfig:
    """Where the monitor reads and acts, and how fast (intervals in real seconds unless named lab)."""

    api_url: str
    token: str
    kmsg: dict[str, Path]
    poll_interval_s: float = 0.2
    dedup_window_s: float = 30.0
    from_start: bool = False
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    runtime_url: str | None = None
    reboot_s: float = 60.0
    ca_file: Path | None = None
    """The CA of an HTTPS API server (the real control plane's); None: the system's."""


class GpuHealthMonitor:
    """Tails kernel logs and remediates; ``run`` until ``stop`` is set."""

    def __init__(self, config: MonitorConfig) -> None:
        self.config = config
        self.metrics = MonitorMetrics()
        self.tails = [KmsgTail(node, path, config.from_start) for node, path in config.kmsg.items()]
        self._acted: dict[tuple[str, int, str | None], float] = {}
        self._cordoned: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.events: list[tuple[XidEvent, str, float]] = []
        self.port = 0
        for node in config.kmsg:
            self.metrics.healthy.labels(node=node).set(1)

    async def handle(self, event: XidEvent, remediator: Remediator) -> None:
        """Count, time and (unless a duplicate) remediate one XID."""
        m, action = self.metrics, action_for(event.code)
        detected = time.time()
        m.detected.labels(node=event.node, code=str(event.code)).inc()
        detection = max(0.0, detected - event.logged_at)
        m.detection.observe(detection)
        m.last_detection.labels(node=event.node).set(detection)
        self.events.append((event, action, detected))
        key = (event.node, event.code, event.pci)
        last = self._acted.get(key)
        if last is not None and time.monotonic() - last < self.config.dedup_window_s:
            return
        self._acted[key] = time.monotonic()
        if action == "ignore":
            return
        for attempt in range(3):
            try:
                done = await remediator.remediate(event, action, self.config.runtime_url)
                break
            except (ApiStatusError, RemediationError, aiohttp.ClientError, TimeoutError) as exc:
                if attempt == 2:
                    m.failures.labels(action=action).inc()
                    print(f"gpu-monitor: {action} on {event.node} failed: {exc}", file=sys.stderr, flush=True)
                    return
                await asyncio.sleep(0.5)
        remediation = max(0.0, time.time() - event.logged_at)
        m.remediation.labels(action=action).observe(remediation)
        m.last_remediation.labels(node=event.node, action=action).set(remediation)
        m.actions.labels(node=event.node, action=action, code=str(event.code)).inc()
        m.restarted.inc(len(done["restarted"]))
        m.evicted.inc(len(done["evicted"]))
        m.healthy.labels(node=event.node).set(1 if action in ("restart-app", "report") else 0)
        if "cordoned" in done["node"]:
            self._cordoned.add(event.node)
            m.cordoned.set(len(self._cordoned))
        if "rebooting" in done["node"]:
            self._tasks.add(task := asyncio.create_task(self._reboot(event, remediator)))
            task.add_done_callback(self._tasks.discard)

    async def _reboot(self, event: XidEvent, remediator: Remediator) -> None:
        await asyncio.sleep(self.config.reboot_s)
        try:
            uncordoned = await remediator.finish_reboot(event.node, self.config.runtime_url or "", event)
        except (ApiStatusError, RemediationError, aiohttp.ClientError, TimeoutError) as exc:
            self.metrics.failures.labels(action="reboot").inc()
            print(
                f"gpu-monitor: finishing the reboot of {event.node} failed: {exc}",
                file=sys.stderr,
                flush=True,
            )
            return
        self.metrics.healthy.labels(node=event.node).set(1)
        if uncordoned:
            self._cordoned.discard(event.node)
            self.metrics.cordoned.set(len(self._cordoned))
            self.metrics.recovery.labels(node=event.node).set(time.time() - event.logged_at)

    async def _refresh(self, client: ApiClient) -> None:
        """Re-read cluster state behind the gauges: cordoned nodes, running GPU pods per node."""
        pods, _ = await client.list("/api/v1/pods", {"resourceVersion": "0"})
        running: dict[str, int] = dict.fromkeys(self.config.kmsg, 0)
        for pod in pods:
            node = (pod.get("spec") or {}).get("nodeName")
            if node and uses_gpu(pod) and (pod.get("status") or {}).get("phase") == "Running":
                running[node] = running.get(node, 0) + 1
        for node, n in running.items():
            self.metrics.gpu_pods.labels(node=node).set(n)
        for node in list(self._cordoned):
            try:
                obj = await client.get(f"/api/v1/nodes/{node}")
            except ApiStatusError as exc:
                if exc.code == 404:
                    self._cordoned.discard(node)
                continue
            if not (obj.get("spec") or {}).get("unschedulable"):
                self._cordoned.discard(node)
        self.metrics.cordoned.set(len(self._cordoned))

    async def _serve_metrics(self) -> web.AppRunner:
        async def metrics(_: web.Request) -> web.Response:
            return web.Response(
                body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
            )

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/healthz", lambda _: _ok())
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.config.listen_host, self.config.listen_port)
        await site.start()
        self.port = int(runner.addresses[0][1])
        return runner

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Serve metrics and tail the logs until ``stop`` is set."""
        runner = await self._serve_metrics()
        try:
            ssl_ctx = ssl.create_default_context(cafile=str(self.config.ca_file)) if self.config.ca_file else True
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_ctx)) as session:
                client = ApiClient(self.config.api_url, self.config.token, session)
                remediator = Remediator(client)
                if ready is not None:
                    ready.set()
                last_refresh = 0.0
                while not stop.is_set():
                    for tail in self.tails:
                        for event in tail.poll():
                            await self.handle(event, remediator)
                    if time.monotonic() - last_refresh > 2.0:
                        last_refresh = time.monotonic()
                        with contextlib.suppress(aiohttp.ClientError, TimeoutError, ApiStatusError):
                            await self._refresh(client)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.config.poll_interval_s)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await runner.cleanup()


async def _ok() -> web.Response:
    return web.Response(text="ok")


def _parse(argv: list[str] | None) -> tuple[MonitorConfig, Path | None]:
    p = argparse.ArgumentParser(
        prog="python -m lab.gpu.monitor", description="XID health monitor for the lab"
    )
    p.add_argument("--api", required=True, help="API server URL")
    p.add_argument("--token-file", required=True, type=Path)
    p.add_argument(
        "--kmsg", action="append", default=[], metavar="NODE=PATH", help="a node's kernel log (repeat)"
    )
    p.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT for /metrics")
    p.add_argument("--poll-interval", type=float, default=0.2, help="real seconds between log reads")
    p.add_argument("--dedup-window", type=float, default=30.0, help="seconds: act once per repeated XID")
    p.add_argument("--from-start", action="store_true", help="also read lines already in the logs")
    p.add_argument("--ready-file", type=Path, help="write the metrics URL here once listening")
    p.add_argument(
        "--runtime-url", help="lab runtime control API: reboots kill and revive the node's kubelet"
    )
    p.add_argument("--reboot-seconds", type=float, default=60.0, help="seconds a reboot takes")
    p.add_argument("--ca-file", type=Path, help="the CA of an HTTPS API server")
    a = p.parse_args(argv)
    kmsg = {}
    for item in a.kmsg:
        node, sep, path = item.partition("=")
        if not sep or not node or not path:
            p.error(f"--kmsg wants NODE=PATH, got {item!r}")
        kmsg[node] = Path(path)
    if not kmsg:
        p.error("give at least one --kmsg NODE=PATH")
    host, _, port = a.listen.rpartition(":")
    cfg = MonitorConfig(
        a.api, a.token_file.read_text().strip(), kmsg, a.poll_interval, a.dedup_window,
        a.from_start, host or "127.0.0.1", int(port), a.runtime_url, a.reboot_seconds, a.ca_file,
    )  # fmt: skip
    return cfg, a.ready_file


async def _main(cfg: MonitorConfig, ready_file: Path | None) -> None:
    monitor, stop, ready = GpuHealthMonitor(cfg), asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(monitor.run(stop, ready))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if ready.is_set():
        url = f"http://{cfg.listen_host}:{monitor.port}/metrics"
        print(f"gpu-monitor: metrics on {url}, watching {', '.join(cfg.kmsg)}", file=sys.stderr, flush=True)
        if ready_file is not None:
            tmp = ready_file.with_name(ready_file.name + ".tmp")
            tmp.write_text(url)
            tmp.replace(ready_file)
    await task


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    cfg, ready_file = _parse(argv)
    asyncio.run(_main(cfg, ready_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
