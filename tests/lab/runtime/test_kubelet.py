"""Tests for lab.runtime.kubelet on the real plane: the status a real node reports, readiness, failed pulls, node
kill and revive."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from tests.conftest import poll
from tests.lab.runtime.conftest import RuntimeLab
from tests.lab.udp import ask

ECHO = "lab.runtime.testprograms:UdpEchoProgram"


def _pod(name: str, node: str, image: str = "lab/pause", program: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if program:
        meta["annotations"] = {"lab.gameday/program": program}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": image}]}}


def _node_ready(rt_lab: RuntimeLab, node: str) -> str:
    return next(c.status for c in rt_lab.core.read_node(node).status.conditions if c.type == "Ready")


def test_pod_status_is_reported_by_the_node(rt_lab: RuntimeLab) -> None:
    """A running pod has phase Running, Ready, a pod IP in the slot's pod network, its node's InternalIP as host
    IP, a start time and restartCount 0."""
    ns = rt_lab.namespace()
    rt_lab.core.create_namespaced_pod(ns, _pod("p", "lab-node-0"))
    pod = poll(lambda: (p := rt_lab.core.read_namespaced_pod("p", ns)).status.phase == "Running" and p, 30, "Running")
    node = rt_lab.core.read_node("lab-node-0")
    assert pod.status.host_ip == next(a.address for a in node.status.addresses if a.type == "InternalIP")
    assert ipaddress.ip_address(pod.status.pod_ip) in ipaddress.ip_network(rt_lab.handle.endpoints["pod_network"])
    assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
    [container] = pod.status.container_statuses
    assert container.restart_count == 0 and container.ready and container.state.running.started_at is not None


def test_readiness_follows_the_program(rt_lab: RuntimeLab, tmp_path: Path) -> None:
    """A running pod is Ready exactly while its program says so (the file of a FileReadyProgram exists), and the
    real Endpoints controller moves its address between notReadyAddresses and addresses accordingly."""
    ns = rt_lab.namespace()
    flag = tmp_path / "ready"
    pod = _pod("flip", "lab-node-0", "lab/program", "lab.runtime.testprograms:FileReadyProgram")
    pod["metadata"]["labels"] = {"app": "flip"}
    pod["spec"]["containers"][0]["env"] = [{"name": "READY_FILE", "value": str(flag)}]
    rt_lab.core.create_namespaced_pod(ns, pod)
    rt_lab.core.create_namespaced_service(ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "flip"},
                                               "spec": {"selector": {"app": "flip"}, "ports": [{"port": 80}]}})

    def state() -> tuple[str, list[str], list[str]]:
        """(the pod's Ready status, the Service's ready addresses, its not-ready addresses)."""
        conditions = rt_lab.core.read_namespaced_pod("flip", ns).status.conditions or []
        found = rt_lab.core.list_namespaced_endpoints(ns, field_selector="metadata.name=flip").items
        subsets = [s for e in found for s in e.subsets or []]
        return (next((c.status for c in conditions if c.type == "Ready"), ""),
                [a.ip for s in subsets for a in s.addresses or []], [a.ip for s in subsets for a in s.not_ready_addresses or []])

    ip = poll(lambda: (p := rt_lab.core.read_namespaced_pod("flip", ns)).status.phase == "Running" and p.status.pod_ip,
              30, "the pod Running")
    poll(lambda: state() == ("False", [], [ip]), 30, "the pod not Ready, its address not ready")
    flag.touch()
    poll(lambda: state() == ("True", [ip], []), 30, "the pod Ready, its address ready")
    flag.unlink()
    poll(lambda: state() == ("False", [], [ip]), 30, "the pod not Ready again")


def test_missing_program_is_err_image_pull_and_retried(rt_lab: RuntimeLab) -> None:
    """A lab/program pod without its annotation waits with ErrImagePull, then ImagePullBackOff, Pending with no restart."""
    ns = rt_lab.namespace()
    rt_lab.core.create_namespaced_pod(ns, _pod("bad", "lab-node-0", "lab/program"))
    seen: list[str] = []

    def waiting(reason: str) -> Any:
        st = rt_lab.core.read_namespaced_pod("bad", ns).status
        cs = (st.container_statuses or [None])[0]
        if cs is not None and cs.state.waiting is not None:
            seen.append(cs.state.waiting.reason)
        return cs is not None and cs.state.waiting is not None and cs.state.waiting.reason == reason and (st, cs)

    st, cs = poll(lambda: waiting("ErrImagePull"), 30, "ErrImagePull")
    assert st.phase == "Pending" and cs.restart_count == 0 and not cs.ready and not cs.started
    st, cs = poll(lambda: waiting("ImagePullBackOff"), 60, "ImagePullBackOff after the retry")  # back-off 10 s
    assert st.phase == "Pending" and cs.restart_count == 0 and not cs.ready, (st.phase, cs.restart_count)
    assert set(seen) <= {"ErrImagePull", "ImagePullBackOff"}, seen


def test_killed_node_stops_programs_and_revive_restarts_them(rt_lab: RuntimeLab) -> None:
    """Killing a node stops its pods' programs (its echo pod stops answering) and its lease renewals (the real node
    lifecycle marks it Unknown); revive brings the node back Ready and the pod's program answers again."""
    ns = rt_lab.namespace()
    node = "lab-node-1"
    rt_lab.core.create_namespaced_pod(ns, _pod("k", node, "lab/program", ECHO))
    pod = poll(lambda: (p := rt_lab.core.read_namespaced_pod("k", ns)).status.phase == "Running" and p.status.pod_ip
               and p, 30, "the echo pod Running")
    ip = pod.status.pod_ip
    poll(lambda: ask(ip, 1053) == b"k:ping", 10, "the echo pod answering")
    assert rt_lab.handle.control(node, "kill") == {"node": node, "paused": False, "dead": True}
    try:
        assert ask(ip, 1053) is None
        assert "lab_nodes_paused 1.0" in rt_lab.metrics()
        poll(lambda: _node_ready(rt_lab, node) == "Unknown", 30, "the killed node Unknown")
    finally:
        rt_lab.handle.control(node, "revive")
    poll(lambda: _node_ready(rt_lab, node) == "True", 30, "the revived node Ready")
    back = poll(lambda: (p := rt_lab.core.read_namespaced_pod("k", ns)).status.phase == "Running"
                and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions) and p, 30,
                "the pod Running and Ready again")
    poll(lambda: ask(back.status.pod_ip, 1053) == b"k:ping", 10, "the echo pod answering again")
