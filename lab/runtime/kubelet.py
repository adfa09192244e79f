"""The pod half of the virtual kubelets: runs the programs of pods bound to hosted nodes.

One pod watch (the shared pod informer) serves every hosted node. A pod gets a loopback IP,
its program is started with a PodContext, and its status (phase, podIP, Ready from
``program.ready()``, restartCount) is posted with the node's own token. Deleting the pod, or
killing its node, stops the program.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from lab.pods import PodContext, PodProgram
from lab.runtime.client import api_path
from lab.runtime.cluster import Cluster
from lab.runtime.errors import ApiStatusError
from lab.runtime.images import ImagePullError, program_for
from lab.runtime.informer import Key
from lab.runtime.ipam import IpPool
from lab.runtime.metrics import PODS_RUNNING_LOCAL
from lab.runtime.nodeagent import NodeAgent
from lab.runtime.objects import is_terminating, now_time
from lab.runtime.podstatus import container_env, pod_status
from lab.runtime.slots import pod_first_octet
from lab.runtime.workqueue import WorkQueue

log = logging.getLogger(__name__)
Obj = dict[str, Any]
STOP_TIMEOUT_S = 10.0


@dataclass
class LocalPod:
    """A pod this runtime runs."""

    key: Key
    uid: str
    node: str
    ip: str
    program: PodProgram | None = None
    started_at: str = ""
    restarts: int = 0
    waiting: str = ""
    message: str = ""
    reported: tuple[bool, str, int] | None = None
    retry: asyncio.TimerHandle | None = field(default=None, repr=False)


class Kubelets:
    """All hosted nodes' kubelets: pod lifecycle, readiness probing and status reporting."""

    def __init__(self, cluster: Cluster, agents: dict[str, NodeAgent]) -> None:
        self.cluster = cluster
        self.agents = agents
        self.pool = IpPool(first_octet=pod_first_octet(cluster.config.slot))
        self.pods: dict[Key, LocalPod] = {}
        self.queue: WorkQueue[Key] = WorkQueue("kubelet")
        cluster.pods.add_handler(self._on_pod)

    def _on_pod(self, etype: str, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        meta = pod["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if node in self.agents or key in self.pods:
            self.queue.add(key)

    async def reconcile(self, key: Key) -> None:
        """Bring one pod's local state in line with the API object."""
        pod = self.cluster.pods.get(*key)
        local = self.pods.get(key)
        node = (pod.get("spec") or {}).get("nodeName") if pod else None
        agent = self.agents.get(node or "")
        if local is not None and (pod is None or pod["metadata"].get("uid") != local.uid or node != local.node):
            await self._stop(local)
            local = None
        if pod is None or agent is None:
            return
        if is_terminating(pod):
            if local is not None:
                await self._stop(local)
            if agent.alive:
                await self.cluster.api.delete(api_path("", "v1", "pods", key[0], key[1]), token=agent.token, grace=0)
            return
        if agent.dead:
            return
        if local is None:
            local = LocalPod(key, pod["metadata"].get("uid", ""), agent.name, self.pool.allocate())
            self.pods[key] = local
        if local.program is None and local.retry is None:
            await self._start(local, pod)
        if agent.alive:
            await self.report(local, pod, agent)

    async def _start(self, local: LocalPod, pod: Obj) -> None:
        spec = pod.get("spec") or {}
        containers = spec.get("containers") or [{}]
        container = containers[0]
        meta = pod["metadata"]
        ctx = PodContext(
            namespace=local.key[0],
            name=local.key[1],
            node_name=local.node,
            pod_ip=local.ip,
            labels=dict(meta.get("labels") or {}),
            env=container_env(container, pod, local.ip),
            args=[*(container.get("command") or []), *(container.get("args") or [])],
            api_url=self.cluster.config.api_url,
            api_token=self.cluster.sa_token(local.key[0], spec.get("serviceAccountName") or "default"),
            time_scale=self.cluster.config.time_scale,
            extra={"annotations": dict(meta.get("annotations") or {}), "uid": local.uid, "host_ip": self.agents[local.node].ip},
        )
        try:
            program = program_for(str(container.get("image") or "lab/pause"), ctx.extra["annotations"])
            await program.start(ctx)
        except ImagePullError as err:
            self._backoff(local, "ErrImagePull", str(err))
            return
        except Exception as err:  # noqa: BLE001  # the program's own failure: CrashLoopBackOff, as a real container
            log.info("pod %s/%s failed to start: %r", *local.key, err)
            self._backoff(local, "CrashLoopBackOff", repr(err))
            return
        local.program = program
        local.waiting = ""
        local.message = ""
        local.started_at = now_time()
        PODS_RUNNING_LOCAL.inc()

    def _backoff(self, local: LocalPod, reason: str, message: str) -> None:
        cfg = self.cluster.config
        delay = cfg.scaled(min(cfg.restart_backoff_s * 2 ** min(local.restarts, 5), 300.0))
        local.waiting, local.message = reason, message
        local.restarts += 1

        def retry() -> None:
            local.retry = None
            self.queue.add(local.key)

        local.retry = asyncio.get_running_loop().call_later(delay, retry)

    async def _stop(self, local: LocalPod) -> None:
        if self.pods.get(local.key) is local:
            del self.pods[local.key]
        if local.retry is not None:
            local.retry.cancel()
            local.retry = None
        program, local.program = local.program, None
        if program is not None:
            PODS_RUNNING_LOCAL.dec()
            try:
                await asyncio.wait_for(program.stop(), STOP_TIMEOUT_S)
            except Exception as err:  # noqa: BLE001
                log.info("pod %s/%s stop failed: %r", *local.key, err)
        self.pool.release(local.ip)

    async def report(self, local: LocalPod, pod: Obj, agent: NodeAgent) -> None:
        """Post the pod's status if it changed since the last report."""
        ready = bool(local.program is not None and local.program.ready())
        state = (ready, local.waiting, local.restarts)
        if state == local.reported and (pod.get("status") or {}).get("podIP") == local.ip:
            return
        status = pod_status(pod, local.ip, agent.ip, ready, local.started_at, local.waiting, local.message, local.restarts)
        path = api_path("", "v1", "pods", local.key[0], local.key[1], "status")
        try:
            updated = await self.cluster.api.patch(path, {"status": status}, token=agent.token)
        except ApiStatusError as err:
            if err.code == 404:
                return
            if err.code != 403:
                raise
            updated = await self.cluster.api.patch(path, {"status": status})
        local.reported = state
        self.cluster.pods.assume(updated)

    async def probe_loop(self) -> None:
        """Re-check readiness of every running pod each probe period; report changes."""
        period = self.cluster.config.scaled(self.cluster.config.probe_period_s)
        while True:
            await asyncio.sleep(period)
            for local in list(self.pods.values()):
                agent = self.agents.get(local.node)
                if agent is None or not agent.alive:
                    continue
                ready = bool(local.program is not None and local.program.ready())
                if local.reported is None or local.reported[0] != ready:
                    self.queue.add(local.key)

    async def kill_node(self, node: str) -> None:
        """Stop every program on a node (the node died)."""
        for local in [p for p in self.pods.values() if p.node == node]:
            await self._stop(local)

    def resync_node(self, node: str) -> None:
        """Re-reconcile every pod bound to a node (after revive/resume)."""
        for pod in self.cluster.pods.items():
            if (pod.get("spec") or {}).get("nodeName") == node:
                meta = pod["metadata"]
                key = (meta.get("namespace", ""), meta["name"])
                local = self.pods.get(key)
                if local is not None:
                    local.reported = None
                self.queue.add(key)

    async def stop_all(self) -> None:
        """Stop every program (runtime shutdown)."""
        await asyncio.gather(*(self._stop(p) for p in list(self.pods.values())), return_exceptions=True)

    async def run(self) -> None:
        """Run the pod work queue and the readiness prober."""
        await asyncio.gather(self.queue.run(self.reconcile, workers=16), self.probe_loop())
