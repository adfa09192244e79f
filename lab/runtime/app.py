"""Wires the runtime together and serves its HTTP front: ``/metrics``, ``/healthz`` and the control API.

Control API (for tests and fault rehearsal, on the metrics port):
``POST /control/nodes/<name>/pause``  stop lease renewals and status updates (pods keep running),
``POST /control/nodes/<name>/resume`` start them again,
``POST /control/nodes/<name>/kill``   pause and stop every pod program on the node,
``POST /control/nodes/<name>/revive`` resume and restart the node's pods,
``GET /control/nodes`` the kubelets' own view (paused, dead, renewals ok/missed),
``GET /control/leases?since=T&until=T`` renewal latency p50/p99/max and missed renewals (UNIX times).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from lab.errors import LabError
from lab.network import PodNetwork
from lab.runtime.cluster import Cluster
from lab.runtime.config import RuntimeConfig
from lab.runtime.kubelet import Kubelets
from lab.runtime.metrics import LOOP_LAG, NODES_PAUSED, NODES_READY, NODES_TOTAL
from lab.runtime.nodeagent import RECENT_MISSES, RECENT_RENEWALS, LeaseThread, NodeAgent
from lab.runtime.objects import node_ready
from lab.runtime.proxy import LOOPBACK, ServiceProxy
from lab.runtime.traffic import KwokTraffic

log = logging.getLogger(__name__)


def lease_stats(since: float, until: float) -> dict[str, Any]:
    """Lease renewal latency percentiles and missed renewals between two wall times."""
    lat = sorted(v for t, v in list(RECENT_RENEWALS) if since <= t < until)
    missed = sum(1 for t in list(RECENT_MISSES) if since <= t < until)

    def pct(q: float) -> float | None:
        return lat[min(int(q * len(lat)), len(lat) - 1)] if lat else None

    return {"renewals": len(lat), "missed": missed, "p50_s": pct(0.5), "p99_s": pct(0.99),
            "max_s": lat[-1] if lat else None}


async def watch_loop_lag(period: float = 0.1, freeze_every: float = 30.0) -> None:
    """Record how late the event loop wakes a periodic timer (stalls show up here), and move
    long-lived objects out of the GC's view every freeze_every seconds (full collections stall)."""
    loop = asyncio.get_running_loop()
    last_freeze = loop.time()
    while True:
        start = loop.time()
        await asyncio.sleep(period)
        LOOP_LAG.observe(max(loop.time() - start - period, 0.0))
        if loop.time() - last_freeze > freeze_every:
            gc.freeze()
            last_freeze = loop.time()


class Runtime:
    """The whole runtime: node agents, kubelets, the kube-proxy stand-in, kwok pods' traffic and the HTTP front."""

    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config
        self.cluster = Cluster.connect(config)
        self.agents = {
            name: NodeAgent(self.cluster, name, i) for i, name in enumerate(config.node_names())
        }
        self.kubelets = Kubelets(self.cluster, self.agents)
        # the lab's pods are on the slot's pod network; other endpoints (kwok's pods) are addresses nothing here serves
        reachable = [LOOPBACK, PodNetwork(config.slot).cidr]
        self.proxy = ServiceProxy(self.cluster, reachable) if config.proxy else None
        # kwok runs no process for its pods: the API traffic of those that make some runs here
        self.traffic = KwokTraffic(self.cluster)
        self.url = ""

    async def _register_nodes(self) -> None:
        sem = asyncio.Semaphore(32)

        async def one(agent: NodeAgent) -> None:
            async with sem:
                for attempt in range(20):
                    try:
                        await agent.register()
                        return
                    except Exception as err:  # noqa: BLE001
                        log.info("registering %s failed (%r); retrying", agent.name, err)
                        await asyncio.sleep(min(0.2 * 2**attempt, 5))
                await agent.register()

        await asyncio.gather(*(one(a) for a in self.agents.values()))

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/control/nodes", self._nodes)
        app.router.add_get("/control/leases", self._leases)
        app.router.add_post("/control/nodes/{name}/{action}", self._control)
        return app

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _metrics(self, request: web.Request) -> web.Response:
        NODES_PAUSED.set(sum(1 for a in self.agents.values() if not a.alive))
        nodes = self.cluster.nodes.items()  # every node's readiness, as kube-state-metrics reads it at a scrape
        NODES_TOTAL.set(len(nodes))
        NODES_READY.set(sum(1 for node in nodes if node_ready(node)))
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _leases(self, request: web.Request) -> web.Response:
        since = float(request.query.get("since", "0"))
        until = float(request.query.get("until", "inf"))
        return web.json_response(lease_stats(since, until))

    async def _nodes(self, request: web.Request) -> web.Response:
        view = {
            name: {"paused": a.paused, "dead": a.dead, "renewals_ok": a.renewals_ok,
                   "renewals_missed": a.renewals_missed, "ip": a.ip}
            for name, a in self.agents.items()
        }
        return web.json_response(view)

    async def _control(self, request: web.Request) -> web.Response:
        name, action = request.match_info["name"], request.match_info["action"]
        agent = self.agents.get(name)
        if agent is None:
            return web.json_response({"error": f"node {name} is not hosted here"}, status=404)
        if action == "pause":
            agent.paused = True
        elif action == "resume":
            agent.paused = False
            self.kubelets.resync_node(name)
        elif action == "kill":
            agent.dead = True
            await self.kubelets.kill_node(name)
        elif action == "revive":
            agent.dead = agent.paused = False
            self.kubelets.resync_node(name)
        else:
            return web.json_response({"error": f"unknown action {action}"}, status=400)
        return web.json_response({"node": name, "paused": agent.paused, "dead": agent.dead})

    async def _watch_thread(self, thread: LeaseThread) -> None:
        while thread.is_alive() or not thread.ident:
            await asyncio.sleep(1.0)
        raise LabError(f"lease thread died: {thread.error!r}")

    async def run(self, ready_file: str | None = None) -> None:
        """Start everything, write the ready file, run until cancelled, then stop every pod."""
        runner = web.AppRunner(self._app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.config.metrics_host, self.config.metrics_port)
        await site.start()
        port = int(runner.addresses[0][1])
        self.url = f"http://{self.config.metrics_host}:{port}"
        tasks: list[asyncio.Task[Any]] = []
        leases = LeaseThread(list(self.agents.values()), self.config, self.cluster.api.token)
        try:
            await self._register_nodes()
            tasks = [asyncio.create_task(i.run()) for i in self.cluster.informers()]
            await self.cluster.wait_synced(timeout=120)
            gc.freeze()
            leases.start()
            loops = [self.kubelets.run(), self.traffic.run()]
            if self.proxy is not None:
                loops.append(self.proxy.run())
            loops += [watch_loop_lag(), self._watch_thread(leases)]
            tasks += [asyncio.create_task(c) for c in loops]
            if ready_file:
                tmp = Path(ready_file + ".tmp")
                tmp.write_text(json.dumps({"url": self.url, "pid": os.getpid()}))
                tmp.replace(ready_file)
            log.info("runtime ready at %s with %d nodes", self.url, len(self.agents))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            leases.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.proxy is not None:
                self.proxy.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.kubelets.stop_all(), 15)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.traffic.stop_all(), 15)
            await runner.cleanup()
            await self.cluster.close()
