"""The node half of a virtual kubelet: registers its Node and renews its Lease as the node itself.

Each node renews ``kube-node-lease/<node>`` through the API with its own ``system:node:<name>``
token every 10 s (scaled), retrying through 429s and slow answers until the next renewal is due.
A renewal that does not land in its interval is counted as missed: nothing local stands in for it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import deque
from typing import Any

from lab.errors import ApiStatusError
from lab.runtime.client import STRATEGIC_MERGE_PATCH, ApiClient, api_path
from lab.runtime.cluster import Cluster, client_session
from lab.runtime.config import RuntimeConfig
from lab.runtime.loops import new_event_loop
from lab.runtime.metrics import LEASE_LATENCY, LEASE_MISSED, LEASE_RENEWALS
from lab.runtime.objects import node_ready, now_micro, now_time

log = logging.getLogger(__name__)
Obj = dict[str, Any]
# (wall time, seconds from due to accepted) of recent renewals, and wall times of missed ones (benchmarks).
RECENT_RENEWALS: deque[tuple[float, float]] = deque(maxlen=500_000)
RECENT_MISSES: deque[float] = deque(maxlen=100_000)
GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"


NODE_KIND_LABEL = "gameday.dev/node-kind"
"""Set to ``real`` on the real plane's lab nodes (kwok's nodes carry ``kwok``), so workloads that must really
run can select them."""


def node_conditions(ready: bool) -> list[Obj]:
    """The kubelet's node conditions (pressure False; Ready as given)."""
    now = now_time()

    def cond(ctype: str, status: str, reason: str, message: str) -> Obj:
        return {
            "type": ctype, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        }

    return [
        cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        cond(
            "Ready", "True" if ready else "False",
            "KubeletReady" if ready else "KubeletNotReady",
            "kubelet is posting ready status" if ready else "kubelet is starting",
        ),
    ]


def node_object(cluster: Cluster, name: str, index: int) -> Obj:
    """The Node a virtual kubelet registers."""
    cfg = cluster.config
    capacity: dict[str, str] = {"cpu": cfg.node_cpu, "memory": cfg.node_memory, "pods": str(cfg.node_pods)}
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "lab-gpu" if cfg.is_gpu(name) else "lab-cpu",
    }
    labels[NODE_KIND_LABEL] = "real"
    if cfg.is_gpu(name):
        capacity["nvidia.com/gpu"] = "8"
        labels.update({
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": GPU_PRODUCT,
            "nvidia.com/gpu.count": "8",
        })
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": node_conditions(True),
            "addresses": [
                {"type": "InternalIP", "address": cfg.node_ip(index)},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "kubeletVersion": "v1.32.0-lab", "kubeProxyVersion": "v1.32.0-lab",
                "containerRuntimeVersion": "lab://1.0", "operatingSystem": "linux",
                "architecture": "amd64", "osImage": "gameday lab",
                "kernelVersion": "lab", "machineID": name, "systemUUID": name, "bootID": name,
            },
        },
    }


class LeaseThread(threading.Thread):
    """Runs every node's renewal loop on its own event loop and HTTP pool, so a busy controller
    loop in the main thread cannot delay heartbeats (real kubelets are separate processes)."""

    def __init__(self, agents: list[NodeAgent], config: RuntimeConfig, token: str) -> None:
        super().__init__(name="lab-leases", daemon=True)
        self.agents, self.config, self.token = agents, config, token
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None

    async def _main(self) -> None:
        self._task = asyncio.current_task()
        async with client_session(self.config, limit=128) as session:
            api = ApiClient(self.config.api_url, self.token, session)
            await asyncio.gather(*(agent.run(api) for agent in self.agents))

    def run(self) -> None:
        """Thread body: a fresh event loop running every renewal loop until stopped."""
        self._loop = new_event_loop(self.config.event_loop)
        try:
            self._loop.run_until_complete(self._main())
        except asyncio.CancelledError:
            pass
        except BaseException as err:  # noqa: BLE001  # reported to the main loop, which stops the runtime
            self.error = err
        finally:
            self._loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel the renewal loops and wait for the thread."""
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        self.join(timeout)


class NodeAgent:
    """One virtual node: registration, lease renewal, ready status; can be paused or killed."""

    def __init__(self, cluster: Cluster, name: str, index: int) -> None:
        self.cluster = cluster
        self.name = name
        self.index = index
        self.ip = cluster.config.node_ip(index)
        self.token = cluster.token(f"system:node:{name}")
        self.paused = False
        self.dead = False
        self._lease: Obj | None = None
        self.uid = ""
        self.renewals_ok = 0
        self.renewals_missed = 0

    @property
    def alive(self) -> bool:
        """Whether the kubelet is talking to the API (not paused, not dead)."""
        return not (self.paused or self.dead)

    async def register(self) -> None:
        """Create this node's Node object, or mark an existing one Ready again."""
        obj = node_object(self.cluster, self.name, self.index)
        path = api_path("", "v1", "nodes")
        try:
            created = await self.cluster.api.create(path, obj, token=self.token)
        except ApiStatusError as err:
            if err.code == 403:
                try:
                    created = await self.cluster.api.create(path, obj)
                    self.uid = str(created["metadata"].get("uid", ""))
                    return
                except ApiStatusError as again:
                    err = again
            if err.code != 409:
                raise
            existing = await self.cluster.api.get(api_path("", "v1", "nodes", None, self.name), token=self.token)
            self.uid = str(existing["metadata"].get("uid", ""))
            await self.report_ready(self.cluster.api)
            return
        self.uid = str(created["metadata"].get("uid", ""))

    async def report_ready(self, api: ApiClient) -> None:
        """Post Ready=True node status (what a healthy kubelet does: a strategic merge patch, so conditions other
        components own, such as the GPU monitor's GpuHealthy, stay)."""
        patch = {"status": {"conditions": node_conditions(True)}}
        path = api_path("", "v1", "nodes", None, self.name, "status")
        try:
            await api.request("PATCH", path, patch, token=self.token, content_type=STRATEGIC_MERGE_PATCH)
        except ApiStatusError as err:
            if err.code != 403:
                raise
            await api.request("PATCH", path, patch, content_type=STRATEGIC_MERGE_PATCH)

    def _lease_body(self) -> Obj:
        owner = [{"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self.uid}] if self.uid else []
        lease = self._lease or {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": "kube-node-lease", "ownerReferences": owner},
            "spec": {"holderIdentity": self.name, "leaseDurationSeconds": self.cluster.config.lease_duration_s},
        }
        lease = {**lease, "spec": {**lease["spec"], "renewTime": now_micro()}}
        return lease

    async def _renew_once(self, api: ApiClient, timeout: float) -> None:
        coll = api_path("coordination.k8s.io", "v1", "leases", "kube-node-lease")
        body = self._lease_body()
        if self._lease is None:
            try:
                self._lease = await api.create(coll, body, token=self.token)
                return
            except ApiStatusError as err:
                if err.code != 409:
                    raise
                self._lease = await api.get(f"{coll}/{self.name}", token=self.token)
                body = self._lease_body()
        try:
            self._lease = await api.replace(f"{coll}/{self.name}", body, token=self.token, timeout=timeout)
        except ApiStatusError as err:
            if err.code in (404, 409):
                self._lease = None if err.code == 404 else await api.get(f"{coll}/{self.name}", token=self.token)
            raise

    async def renew(self, api: ApiClient, deadline: float) -> bool:
        """Renew the lease, retrying until the monotonic deadline; True when it landed."""
        due = time.monotonic()
        backoff = 0.2
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.alive:
                return False
            try:
                await self._renew_once(api, timeout=max(remaining, 0.05))
                LEASE_RENEWALS.labels("ok").inc()
                latency = time.monotonic() - due
                LEASE_LATENCY.observe(latency)
                RECENT_RENEWALS.append((time.time(), latency))
                return True
            except Exception as err:  # noqa: BLE001  # 429, timeouts, resets: retry within the interval
                LEASE_RENEWALS.labels("failed").inc()
                wait = backoff
                if isinstance(err, ApiStatusError) and err.retry_after:
                    wait = max(wait, min(err.retry_after, 1.0))
                log.debug("lease %s renewal failed: %r", self.name, err)
                await asyncio.sleep(min(wait, max(deadline - time.monotonic(), 0)))
                backoff = min(backoff * 2, 2.0)

    async def run(self, api: ApiClient) -> None:
        """Renew through api every interval forever; re-post Ready status when the node is not Ready."""
        interval = self.cluster.config.renew_interval_s
        await asyncio.sleep(random.uniform(0, interval))
        next_due = time.monotonic()
        while True:
            next_due += interval
            if self.alive:
                if await self.renew(api, next_due):
                    self.renewals_ok += 1
                    node = self.cluster.nodes.get("", self.name)
                    if node is not None and not node_ready(node) and self.alive:
                        try:
                            await self.report_ready(api)
                        except Exception as err:  # noqa: BLE001
                            log.info("node %s status update failed: %r", self.name, err)
                else:
                    self.renewals_missed += 1
                    LEASE_MISSED.inc()
                    RECENT_MISSES.append(time.time())
            now = time.monotonic()
            next_due = max(next_due, now)
            await asyncio.sleep(next_due - now)
