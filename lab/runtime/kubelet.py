"""The pod half of the virtual kubelets: runs the programs of pods bound to hosted nodes.

One pod watch (the shared pod informer) serves every hosted node. A pod gets a loopback IP,
its program is started with a PodContext, and its status (phase, podIP, Ready from
``program.ready()``, restartCount) is posted with the node's own token. Deleting the pod, or
killing its node, stops the program.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lab.errors import ApiStatusError, LabError
from lab.network import PodAddresses, PodNetwork
from lab.pods import PodContext, PodProgram
from lab.runtime.client import api_path
from lab.runtime.cluster import Cluster
from lab.runtime.envvars import container_env
from lab.runtime.images import ImagePullError, program_for, sandboxed
from lab.runtime.informer import Key
from lab.runtime.metrics import PODS_RUNNING_LOCAL
from lab.runtime.nodeagent import NodeAgent
from lab.runtime.objects import is_terminating, now_time
from lab.runtime.podstatus import pod_status, readiness_url
from lab.runtime.scrape import SCRAPE_TARGETS, ScrapeTarget, scrape_target, write_targets
from lab.runtime.volumes import SYNC_S, ConfigMapVolumes
from lab.runtime.workqueue import WorkQueue
from lab.sandbox import PodSandbox

log = logging.getLogger(__name__)
Obj = dict[str, Any]
STOP_TIMEOUT_S = 10.0
CONFIG_RETRY_S = 1.0
POD_LOGS = "logs"
"""Where stopped pods' container logs are kept, under the pods directory."""


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
    pull_failures: int = 0
    waiting: str = ""
    message: str = ""
    reported: tuple[bool, str, int] | None = None
    retry: asyncio.TimerHandle | None = field(default=None, repr=False)
    sandboxed: bool = False
    host_network: bool = False
    sandbox: PodSandbox | None = None
    volumes: ConfigMapVolumes | None = None
    scrape: ScrapeTarget | None = None


class Kubelets:
    """All hosted nodes' kubelets: pod lifecycle, readiness probing and status reporting."""

    def __init__(self, cluster: Cluster, agents: dict[str, NodeAgent]) -> None:
        self.cluster = cluster
        self.agents = agents
        cfg = cluster.config
        self.pool = PodAddresses(PodNetwork(cfg.slot, cfg.nodes))
        self.pods_root = Path(cfg.pods_dir or Path(tempfile.gettempdir()) / f"gameday-pods-{os.getpid()}")
        write_targets(self.pods_root / SCRAPE_TARGETS, [])
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
                await self._finish_delete(key, agent)
            return
        if agent.dead:
            return
        if local is None:
            local = self._admit(key, pod, agent)
            self.pods[key] = local
        if local.program is None and local.retry is None:
            await self._start(local, pod)
        if agent.alive:
            await self.report(local, pod, agent)

    def _write_targets(self) -> None:
        """Rewrite Prometheus's file-discovery targets: the running pods that ask to be scraped."""
        write_targets(self.pods_root / SCRAPE_TARGETS, [p.scrape for p in self.pods.values() if p.scrape])

    def _admit(self, key: Key, pod: Obj, agent: NodeAgent) -> LocalPod:
        """A new local pod with its address: on the bridge, or (a program that asks for a network namespace of its
        own) held by its sandbox once that is made."""
        meta = pod["metadata"]
        if (pod.get("spec") or {}).get("hostNetwork"):
            # the node's own network: the node's address, no sandbox (what a kubelet does for hostNetwork)
            return LocalPod(key, str(meta.get("uid", "")), agent.name, agent.ip, host_network=True)
        container = ((pod.get("spec") or {}).get("containers") or [{}])[0]
        boxed = sandboxed(str(container.get("image") or "lab/pause"), dict(meta.get("annotations") or {}))
        ip = self.pool.allocate(on_link=not boxed)
        return LocalPod(key, str(meta.get("uid", "")), agent.name, ip, sandboxed=boxed)

    async def _prepare(self, local: LocalPod, pod: Obj, agent: NodeAgent) -> None:
        """The pod's directory, its configMap volumes and (when it asks for one) its sandbox."""
        pod_dir = self.pods_root / local.uid
        if local.volumes is None:
            local.volumes = ConfigMapVolumes(pod, pod_dir / "volumes")
        await local.volumes.sync(self.cluster.api, agent.token)
        if local.sandboxed and local.sandbox is None and isinstance(self.pool, PodAddresses):
            sandbox = PodSandbox(self.pool.network, local.uid, local.ip, gateway=agent.ip)
            await asyncio.to_thread(sandbox.create)
            local.sandbox = sandbox

    async def _finish_delete(self, key: Key, agent: NodeAgent) -> None:
        """Delete a terminating pod for good once its program stopped (the kubelet's last word on it)."""
        path = api_path("", "v1", "pods", key[0], key[1])
        try:
            await self.cluster.api.delete(path, token=agent.token, grace=0)
        except ApiStatusError as err:
            if err.code != 403:
                raise
            await self.cluster.api.delete(path, grace=0)

    async def _token(self, local: LocalPod, spec: Obj) -> str:
        """The token the pod's program speaks with: its service account's (TokenRequest, bound to the pod), never an
        admin one."""
        account = spec.get("serviceAccountName") or "default"
        return await self.cluster.request_token(local.key[0], account, local.key[1], local.uid,
                                                self.agents[local.node].token)

    async def _start(self, local: LocalPod, pod: Obj) -> None:
        spec = pod.get("spec") or {}
        containers = spec.get("containers") or [{}]
        container = containers[0]
        meta = pod["metadata"]
        agent = self.agents[local.node]
        try:
            token = await self._token(local, spec)
            await self._prepare(local, pod, agent)
        except ApiStatusError as err:  # no such service account or ConfigMap yet, or refused: the kubelet retries
            self._backoff(local, "CreateContainerConfigError", str(err), "config")
            return
        except LabError as err:  # the sandbox could not be made
            self._backoff(local, "CreatePodSandboxError", str(err), "config")
            return
        ctx = PodContext(
            namespace=local.key[0],
            name=local.key[1],
            node_name=local.node,
            pod_ip=local.ip,
            labels=dict(meta.get("labels") or {}),
            env=container_env(container, pod, local.ip, agent.ip, self.cluster.services.items()),
            args=[*(container.get("command") or []), *(container.get("args") or [])],
            api_url=self.cluster.config.api_url,
            api_token=token,
            api_ca_file=self.cluster.config.ca_file,
            sandbox=local.sandbox,
            volumes=local.volumes.paths() if local.volumes is not None else {},
            binaries=dict(self.cluster.config.binaries),
            pod_dir=str(self.pods_root / local.uid),
            readiness_url=readiness_url(container, local.ip),
            extra={"annotations": dict(meta.get("annotations") or {}), "uid": local.uid, "host_ip": agent.ip},
        )
        try:
            program = program_for(str(container.get("image") or "lab/pause"), ctx.extra["annotations"])
            await program.start(ctx)
        except ImagePullError as err:  # the container never started: no restart, the pod stays Pending
            local.pull_failures += 1
            self._backoff(local, "ErrImagePull" if local.pull_failures == 1 else "ImagePullBackOff", str(err), "pull")
            return
        except Exception as err:  # noqa: BLE001  # the program's own failure: CrashLoopBackOff, as a real container
            log.info("pod %s/%s failed to start: %r", *local.key, err)
            self._backoff(local, "CrashLoopBackOff", repr(err), "crash")
            return
        local.program = program
        local.scrape = scrape_target(pod, local.ip)
        if local.scrape is not None:
            self._write_targets()
        local.waiting = ""
        local.message = ""
        local.started_at = now_time()
        PODS_RUNNING_LOCAL.inc()

    def _backoff(self, local: LocalPod, reason: str, message: str, cause: Literal["crash", "pull", "config"]) -> None:
        """Retry the pod's start later: after CrashLoopBackOff's doubling delay when its program failed (a
        restart), after the image pull's own doubling delay when its image could not be had (no restart, as
        ImagePullBackOff), after CONFIG_RETRY_S when what it needs was not there yet (no restart, as a kubelet's
        next sync)."""
        failures = {"crash": local.restarts, "pull": local.pull_failures - 1}.get(cause)
        delay = (CONFIG_RETRY_S if failures is None
                 else min(self.cluster.config.restart_backoff_s * 2 ** min(failures, 5), 300.0))
        log.info("pod %s/%s: %s: %s (retry in %.1f s)", *local.key, reason, message, delay)
        local.waiting, local.message = reason, message
        local.restarts += int(cause == "crash")

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
        if local.scrape is not None:
            local.scrape = None
            self._write_targets()
        sandbox, local.sandbox = local.sandbox, None
        try:
            if sandbox is not None:
                await asyncio.to_thread(sandbox.destroy)
            if local.volumes is not None or sandbox is not None:
                await asyncio.to_thread(self._remove_pod_dir, local)
        except LabError as err:
            log.warning("pod %s/%s sandbox not removed: %s", *local.key, err)
        if not local.host_network:
            self.pool.release(local.ip)

    def _remove_pod_dir(self, local: LocalPod) -> None:
        """Remove a stopped pod's directory, keeping its container logs under ``logs/NAMESPACE_NAME_UID/`` (as
        /var/log/pods keeps them for a while), so a run's post-mortem can read what its pods said."""
        pod_dir = self.pods_root / local.uid
        logs = list(pod_dir.glob("*.log"))
        if logs:
            kept = self.pods_root / POD_LOGS / f"{local.key[0]}_{local.key[1]}_{local.uid}"
            kept.mkdir(parents=True, exist_ok=True)
            for path in logs:
                with contextlib.suppress(OSError):
                    path.replace(kept / path.name)
        shutil.rmtree(pod_dir, True)

    async def report(self, local: LocalPod, pod: Obj, agent: NodeAgent) -> None:
        """Post the pod's status if it changed since the last report."""
        ready = bool(local.program is not None and local.program.ready())
        state = (ready, local.waiting, local.restarts)
        posted = pod.get("status") or {}
        # the node lifecycle controller marks a NotReady node's pods not Ready: a kubelet whose node is back posts
        # the truth again, so the API's Ready condition is compared too, not only what this kubelet last posted
        api_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in posted.get("conditions") or [])
        if state == local.reported and posted.get("podIP") == local.ip and api_ready == ready:
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
        period = self.cluster.config.probe_period_s
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

    async def volume_loop(self) -> None:
        """Keep every running pod's configMap volumes in step with their ConfigMaps."""
        while True:
            await asyncio.sleep(SYNC_S)
            for local in list(self.pods.values()):
                agent = self.agents.get(local.node)
                if local.volumes is None or not local.volumes.sources or local.program is None or agent is None:
                    continue
                try:
                    written = await local.volumes.sync(self.cluster.api, agent.token)
                except Exception as err:  # noqa: BLE001  # the API is away: the files stay as they were
                    log.info("pod %s/%s volumes not synced: %r", *local.key, err)
                    continue
                for path in written:
                    log.info("pod %s/%s: %s updated from its ConfigMap", *local.key, path.relative_to(local.volumes.root))

    async def run(self) -> None:
        """Run the pod work queue, the readiness prober and the volume sync."""
        await asyncio.gather(self.queue.run(self.reconcile, workers=16), self.probe_loop(), self.volume_loop())
