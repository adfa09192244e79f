"""Tests for lab.runtime.kubelet in a live lab: status fields, failed pulls, node kill and revive."""

from __future__ import annotations

from typing import Any

from lab.runtime.testing import wait_for
from tests.lab.runtime.ips import in_a_slot_pod_range


def _pod(name: str, node: str, image: str = "lab/pause") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": image}]}}


def test_pod_status_is_reported_by_the_node(rt_lab: Any) -> None:
    """A running pod has phase Running, Ready, a pod IP, the node's host IP and restartCount 0."""
    ns = rt_lab.namespace()
    node = rt_lab.node_names[0]
    rt_lab.core.create_namespaced_pod(ns, _pod("p", node))
    pod = wait_for(lambda: (p := rt_lab.core.read_namespaced_pod("p", ns)).status.phase == "Running" and p,
                   what="Running")
    assert pod.status.host_ip.startswith("127.30.")
    assert in_a_slot_pod_range(pod.status.pod_ip)
    assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
    assert pod.status.container_statuses[0].restart_count == 0


def test_missing_program_is_err_image_pull_and_retried(rt_lab: Any) -> None:
    """A lab/program pod without its annotation waits with ErrImagePull and its restart count grows."""
    ns = rt_lab.namespace()
    rt_lab.core.create_namespaced_pod(ns, _pod("bad", rt_lab.node_names[0], "lab/program"))

    def waiting() -> Any:
        st = rt_lab.core.read_namespaced_pod("bad", ns).status
        cs = (st.container_statuses or [None])[0]
        return cs is not None and cs.state.waiting is not None and cs.restart_count >= 2 and cs

    cs = wait_for(waiting, what="ErrImagePull with retries")
    assert cs.state.waiting.reason == "ErrImagePull" and not cs.ready


def test_killed_node_stops_programs_and_revive_restarts_them(rt_lab: Any) -> None:
    """Killing a node stops its pods' programs (readiness goes nowhere: the node is silent); revive restarts them."""
    ns = rt_lab.namespace()
    node = rt_lab.node_names[2]
    rt_lab.core.create_namespaced_pod(ns, _pod("k", node))
    wait_for(lambda: rt_lab.core.read_namespaced_pod("k", ns).status.phase == "Running", what="Running")
    assert rt_lab.runtime.control(node, "kill") == {"node": node, "paused": False, "dead": True}
    try:
        assert "lab_kubelet_running_pods" in rt_lab.runtime.metrics()
        wait_for(lambda: any(c.type == "Ready" and c.status == "Unknown"
                             for c in rt_lab.core.read_node(node).status.conditions), timeout=20, what="node Unknown")
    finally:
        rt_lab.runtime.control(node, "revive")
    wait_for(lambda: any(c.type == "Ready" and c.status == "True" for c in rt_lab.core.read_node(node).status.conditions),
             timeout=20, what="node Ready")
    wait_for(lambda: rt_lab.core.read_namespaced_pod("k", ns).status.phase == "Running", what="pod back")
