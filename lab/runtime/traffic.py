"""The API traffic of pods that kwok runs: kwok plays the kubelet of its nodes but runs no process, so for a pod
bound to one of kwok's nodes whose image makes API traffic (``TRAFFIC_IMAGES``: the storm's ``lab/list-storm``),
the runtime runs that program itself, with a token for the pod's own service account from the TokenRequest API
(bound to the pod), so API Priority and Fairness classifies its requests as the pod's, as if it ran on a node.

It starts once kwok has the pod Running and stops when the pod is deleted, terminating or no longer Running. The
program gets no network of its own (it only speaks to the API server); its pod IP is kwok's."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from lab.errors import ApiStatusError
from lab.pods import PodContext, PodProgram
from lab.runtime.cluster import ADMIN, Cluster
from lab.runtime.envvars import container_env
from lab.runtime.images import ImagePullError, image_name, program_for
from lab.runtime.informer import Key
from lab.runtime.objects import Obj, is_terminating
from lab.runtime.workqueue import WorkQueue
from lab.wellknown import KWOK_NODE_ANNOTATION

log = logging.getLogger(__name__)

TRAFFIC_IMAGES = frozenset({"lab/list-storm"})
"""Images whose program only makes API requests, run for pods on kwok's nodes."""
RETRY_S = 2.0
STOP_TIMEOUT_S = 10.0


@dataclass
class TrafficPod:
    """One kwok pod whose program runs here."""

    uid: str
    program: PodProgram


class KwokTraffic:
    """Runs the API-traffic programs of the pods on kwok's nodes."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.running: dict[Key, TrafficPod] = {}
        self.queue: WorkQueue[Key] = WorkQueue("kwok-traffic")
        cluster.pods.add_handler(self._on_pod)

    def _on_pod(self, etype: str, pod: Obj) -> None:
        meta = pod["metadata"]
        key = (str(meta.get("namespace", "")), str(meta["name"]))
        if key in self.running or self._image(pod) in TRAFFIC_IMAGES:
            self.queue.add(key)

    @staticmethod
    def _image(pod: Obj) -> str:
        containers = (pod.get("spec") or {}).get("containers") or [{}]
        return image_name(str(containers[0].get("image") or ""))

    def _wanted(self, pod: Obj | None) -> bool:
        """Whether the pod is a traffic pod on a kwok node that kwok has Running."""
        if pod is None or is_terminating(pod) or self._image(pod) not in TRAFFIC_IMAGES:
            return False
        if (pod.get("status") or {}).get("phase") != "Running":
            return False
        node = self.cluster.nodes.get("", str((pod.get("spec") or {}).get("nodeName") or ""))
        annotations = ((node or {}).get("metadata") or {}).get("annotations") or {}
        return bool(annotations.get(KWOK_NODE_ANNOTATION))

    async def reconcile(self, key: Key) -> None:
        """Start or stop one pod's program to match the API object."""
        pod = self.cluster.pods.get(*key)
        current = self.running.get(key)
        uid = str(pod["metadata"].get("uid", "")) if pod else ""
        if current is not None and (not self._wanted(pod) or current.uid != uid):
            await self._stop(key)
            current = None
        if current is not None or pod is None or not self._wanted(pod):
            return
        try:
            program = await self._start(key, pod)
        except ApiStatusError as err:  # no such service account yet, or refused: try again, as a kubelet would
            log.info("kwok pod %s/%s: no token yet (%s); retrying", *key, err)
            self.queue.add_later(key, RETRY_S)
            return
        except ImagePullError as err:
            log.warning("kwok pod %s/%s: %s", *key, err)
            return
        self.running[key] = TrafficPod(uid, program)

    async def _start(self, key: Key, pod: Obj) -> PodProgram:
        spec = pod.get("spec") or {}
        meta = pod["metadata"]
        status = pod.get("status") or {}
        account = str(spec.get("serviceAccountName") or "default")
        uid = str(meta.get("uid", ""))
        # asked for as the admin: the Node authorizer knows no kubelet identity for kwok's nodes
        token = await self.cluster.request_token(key[0], account, key[1], uid, self.cluster.token(ADMIN))
        container = (spec.get("containers") or [{}])[0]
        ctx = PodContext(
            namespace=key[0], name=key[1], node_name=str(spec.get("nodeName") or ""),
            pod_ip=str(status.get("podIP") or ""), labels=dict(meta.get("labels") or {}),
            env=container_env(container, pod, str(status.get("podIP") or ""), str(status.get("hostIP") or ""),
                              self.cluster.services.items()),
            args=[*(container.get("command") or []), *(container.get("args") or [])],
            api_url=self.cluster.config.api_url, api_token=token,
            api_ca_file=self.cluster.config.ca_file, extra={"uid": uid, "kwok": True},
        )
        program = program_for(str(container.get("image") or ""), dict(meta.get("annotations") or {}))
        await program.start(ctx)
        log.info("kwok pod %s/%s: its traffic runs here as %s/%s", *key, key[0], account)
        return program

    async def _stop(self, key: Key) -> None:
        current = self.running.pop(key, None)
        if current is None:
            return
        try:
            await asyncio.wait_for(current.program.stop(), STOP_TIMEOUT_S)
        except Exception as err:  # noqa: BLE001  # a program's failure to stop must not stop the others
            log.info("kwok pod %s/%s stop failed: %r", *key, err)

    async def stop_all(self) -> None:
        """Stop every program (the runtime is going down)."""
        for key in list(self.running):
            await self._stop(key)

    async def run(self) -> None:
        """Reconcile traffic pods forever."""
        await self.queue.run(self.reconcile, workers=8)
