"""What the GPU health monitor does to the cluster, through the API server only.

- restart-app: delete the pods on the node that request ``nvidia.com/gpu`` (their controllers recreate them).
- reset-gpu: annotate the node ``gameday.dev/gpu-reset-<pci>`` (the lab's stand-in for ``nvidia-smi -r``; the PCI
  address with ``.`` for ``:``, which an annotation key may not hold), then restart the GPU pods as above.
- reboot (79, 48, 74): cordon (``spec.unschedulable``), then evict every pod on the node except DaemonSet
  and mirror pods (``kubectl drain --ignore-daemonsets``), and annotate ``gameday.dev/reboot-requested``.
  Given the runtime's control URL, the reboot is real in the lab's terms: the node's kubelet is killed
  (``POST /control/nodes/<node>/kill``: pods stop, the node goes NotReady) and revived after the reboot
  time; ``finish_reboot`` then marks the GPUs healthy and uncordons the node if this monitor cordoned it.
  Without it the reboot is left to whoever owns the node.
The ``GpuHealthy`` node condition is set with a strategic merge patch (conditions merge by type).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lab.errors import ApiStatusError
from lab.gpu.errors import RemediationError
from lab.gpu.xid import Action, XidEvent
from lab.runtime.client import ApiClient

Obj = dict[str, Any]
STRATEGIC = "application/strategic-merge-patch+json"
GPU_RESOURCE = "nvidia.com/gpu"
CONDITION = "GpuHealthy"
RESET_ANNOTATION = "gameday.dev/gpu-reset-"
REBOOT_ANNOTATION = "gameday.dev/reboot-requested"
CORDONED_BY_ANNOTATION = "gameday.dev/cordoned-by"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def uses_gpu(pod: Obj) -> bool:
    """Whether any container of the pod requests or limits ``nvidia.com/gpu``."""
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        for part in ("limits", "requests"):
            if str((res.get(part) or {}).get(GPU_RESOURCE, "0")) not in ("0", ""):
                return True
    return False


def _drainable(pod: Obj) -> bool:
    meta = pod.get("metadata") or {}
    if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
        return False
    if any(o.get("kind") == "DaemonSet" for o in meta.get("ownerReferences") or []):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


class Remediator:
    """Carries out catalogue actions on one API server as the monitor's identity."""

    def __init__(self, client: ApiClient, component: str = "gpu-health-monitor") -> None:
        self.client = client
        self.component = component

    async def pods_on(self, node: str) -> list[Obj]:
        """Every pod bound to ``node``."""
        items, _ = await self.client.list("/api/v1/pods", {"fieldSelector": f"spec.nodeName={node}"})
        return [p for p in items if not (p.get("metadata") or {}).get("deletionTimestamp")]

    async def restart_gpu_pods(self, node: str) -> list[str]:
        """Delete the GPU pods on ``node``; returns ``namespace/name`` of each."""
        done = []
        for pod in await self.pods_on(node):
            if uses_gpu(pod):
                meta = pod["metadata"]
                await self.client.delete(
                    f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", grace=0
                )
                done.append(f"{meta['namespace']}/{meta['name']}")
        return done

    async def cordon(self, node: str) -> bool:
        """Mark the node unschedulable; returns False when it already was."""
        current = await self.client.get(f"/api/v1/nodes/{node}")
        if (current.get("spec") or {}).get("unschedulable"):
            return False
        patch = {
            "spec": {"unschedulable": True},
            "metadata": {"annotations": {CORDONED_BY_ANNOTATION: self.component}},
        }
        await self.client.patch(f"/api/v1/nodes/{node}", patch)
        return True

    async def drain(self, node: str) -> list[str]:
        """Evict every drainable pod on the node through the Eviction API."""
        evicted = []
        for pod in await self.pods_on(node):
            if not _drainable(pod):
                continue
            meta = pod["metadata"]
            body = {"apiVersion": "policy/v1", "kind": "Eviction",
                    "metadata": {"name": meta["name"], "namespace": meta["namespace"]}}  # fmt: skip
            try:
                await self.client.create(
                    f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/eviction", body
                )
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise RemediationError(f"evicting {meta['namespace']}/{meta['name']}: {exc}") from exc
            evicted.append(f"{meta['namespace']}/{meta['name']}")
        return evicted

    async def annotate(self, node: str, annotations: dict[str, str]) -> None:
        """Merge annotations into the node."""
        await self.client.patch(f"/api/v1/nodes/{node}", {"metadata": {"annotations": annotations}})

    async def set_condition(self, node: str, healthy: bool, event: XidEvent, action: str) -> None:
        """Set the node's ``GpuHealthy`` condition from the latest XID."""
        now = _now()
        condition = {
            "type": CONDITION, "status": "True" if healthy else "False", "reason": f"Xid{event.code}",
            "message": f"XID {event.code} on {event.pci or 'unknown PCI'}: {action}",
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        }  # fmt: skip
        await self.client.request(
            "PATCH",
            f"/api/v1/nodes/{node}/status",
            {"status": {"conditions": [condition]}},
            content_type=STRATEGIC,
        )

    async def runtime_control(self, runtime_url: str, node: str, action: str) -> None:
        """POST a node action (kill, revive) to the lab runtime's control API."""
        async with self.client.session.post(
            f"{runtime_url.rstrip('/')}/control/nodes/{node}/{action}"
        ) as resp:
            if resp.status >= 400:
                raise RemediationError(
                    f"runtime {action} of {node}: HTTP {resp.status} {(await resp.text())[:200]}"
                )

    async def finish_reboot(self, node: str, runtime_url: str, event: XidEvent) -> bool:
        """Revive the node, mark its GPUs healthy and uncordon it if we cordoned it; True when uncordoned."""
        await self.runtime_control(runtime_url, node, "revive")
        await self.set_condition(node, True, event, "rebooted")
        current = await self.client.get(f"/api/v1/nodes/{node}")
        annotations = (current.get("metadata") or {}).get("annotations") or {}
        if annotations.get(CORDONED_BY_ANNOTATION) != self.component:
            return False
        patch = {"spec": {"unschedulable": None},
                 "metadata": {"annotations": {CORDONED_BY_ANNOTATION: None, REBOOT_ANNOTATION: None}}}  # fmt: skip
        await self.client.patch(f"/api/v1/nodes/{node}", patch)
        return True

    async def remediate(
        self, event: XidEvent, action: Action, runtime_url: str | None = None
    ) -> dict[str, list[str]]:
        """Apply ``action`` for ``event``; returns what was touched (pods restarted/evicted, node changes)."""
        node = event.node
        out: dict[str, list[str]] = {"restarted": [], "evicted": [], "node": []}
        if action == "restart-app":
            out["restarted"] = await self.restart_gpu_pods(node)
        elif action == "reset-gpu":
            pci = (event.pci or "unknown").replace(":", ".")
            await self.annotate(node, {f"{RESET_ANNOTATION}{pci}": _now()})
            out["node"].append("gpu-reset")
            out["restarted"] = await self.restart_gpu_pods(node)
        elif action == "reboot":
            if await self.cordon(node):
                out["node"].append("cordoned")
            out["evicted"] = await self.drain(node)
            await self.annotate(node, {REBOOT_ANNOTATION: _now()})
            out["node"].append("reboot-requested")
            if runtime_url:
                await self.runtime_control(runtime_url, node, "kill")
                out["node"].append("rebooting")
        if action != "ignore":
            await self.set_condition(node, action in ("restart-app", "report"), event, action)
        return out
