"""Tests for lab.runtime.controllers.scheduler: feasibility and spreading, then binding in a live lab."""

from __future__ import annotations

from typing import Any

from lab.runtime.controllers.scheduler import node_fits, pick_node
from lab.runtime.testing import wait_for
from tests.lab.runtime.ips import in_a_slot_pod_range


def _node(name: str, ready: bool = True, gpus: int = 0, **spec: Any) -> dict[str, Any]:
    alloc = {"cpu": "4", "memory": "8Gi", "pods": "10"}
    labels = {"kubernetes.io/hostname": name}
    if gpus:
        alloc["nvidia.com/gpu"] = str(gpus)
        labels["nvidia.com/gpu.present"] = "true"
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {"allocatable": alloc, "conditions": [{"type": "Ready", "status": "True" if ready else "Unknown"}]},
    }


def _pod(cpu: str = "1", gpu: int = 0, **spec: Any) -> dict[str, Any]:
    req: dict[str, Any] = {"cpu": cpu}
    if gpu:
        req["nvidia.com/gpu"] = gpu
    return {"metadata": {"name": "p"}, "spec": {"containers": [{"resources": {"requests": req}}], **spec}}


def test_node_fits_rejects_unready_cordoned_tainted_and_full() -> None:
    """Only Ready, uncordoned, tolerated nodes with room are feasible."""
    pod = _pod()
    assert node_fits(_node("a"), pod, {})
    assert not node_fits(_node("a", ready=False), pod, {})
    assert not node_fits(_node("a", unschedulable=True), pod, {})
    tainted = _node("a", taints=[{"key": "k", "effect": "NoSchedule"}])
    assert not node_fits(tainted, pod, {})
    assert node_fits(tainted, _pod(tolerations=[{"key": "k", "operator": "Exists"}]), {})
    assert not node_fits(_node("a"), pod, {"cpu": 3.5})
    assert not node_fits(_node("a"), pod, {"pods": 10})


def test_gpu_requests_need_gpu_capacity() -> None:
    """A GPU request fits only nodes with enough free nvidia.com/gpu."""
    pod = _pod(gpu=4)
    assert not node_fits(_node("cpu"), pod, {})
    assert node_fits(_node("gpu", gpus=8), pod, {"nvidia.com/gpu": 4})
    assert not node_fits(_node("gpu", gpus=8), pod, {"nvidia.com/gpu": 5})


def test_pick_node_spreads_to_least_loaded() -> None:
    """Among feasible nodes the one with fewest pods wins; none feasible gives None."""
    nodes = [_node("a"), _node("b"), _node("c")]
    usage = {"a": {"pods": 2}, "b": {"pods": 0}, "c": {"pods": 1}}
    assert pick_node(nodes, _pod(), usage) == "b"
    assert pick_node(nodes, _pod(cpu="64"), usage) is None
    assert pick_node(nodes, _pod(nodeSelector={"kubernetes.io/hostname": "c"}), usage) == "c"


def test_gpu_pod_lands_on_gpu_node(rt_lab: Any) -> None:
    """A pod requesting nvidia.com/gpu is bound to the GPU node and runs there."""
    ns = rt_lab.namespace()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "train"},
           "spec": {"containers": [{"name": "c", "image": "lab/pause",
                                    "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}
    rt_lab.core.create_namespaced_pod(ns, pod)
    got = wait_for(lambda: (p := rt_lab.core.read_namespaced_pod("train", ns)).status.phase == "Running" and p,
                   what="GPU pod Running")
    assert got.spec.node_name.startswith("gpu-node-")
    assert in_a_slot_pod_range(got.status.pod_ip)
