"""GPU nodes on the real control plane: lab nodes that advertise nvidia.com/gpu, each with its node agent (fake NVML,
its own kernel log), and the GPU health monitor acting on them through the real API server (XID 79 → cordon, drain,
reboot, the trainer rescheduled by the real scheduler and Deployment controller, uncordon)."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lab.control import plane
from lab.procs import pid_alive, read_pids
from lab.testing import LabHandle, running_control_plane
from tests.conftest import poll, require

GPU_NODES = ["gpu-node-0", "gpu-node-1"]
FAST: dict[str, Any] = {"node_lease_seconds": 4, "node_monitor_grace_seconds": 6, "node_monitor_period_seconds": 1,
                        "not_ready_toleration_seconds": 60, "unreachable_toleration_seconds": 60,
                        "gpu_reboot_seconds": 12}
"""Leases renewed every second, NotReady 6 s after the last renewal; a monitor reboot keeps a node down 12 s."""

pytestmark = pytest.mark.timeout(420)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    """A real control plane with one kwok node, one real lab node and two GPU nodes with the GPU side."""
    require(os.geteuid() == 0, "the lab's own nodes' pod network needs root (ip link/addr)")
    with running_control_plane(tmp_path_factory.mktemp("gpu-nodes"), nodes=1, real_nodes=1, gpu_nodes=2,
                               **FAST) as handle:
        yield handle


def _get(lab: LabHandle, path: str, token: str | None = None) -> Any:
    resp = httpx.get(lab.endpoints["apiserver"] + path, timeout=10,
                     verify=ssl.create_default_context(cafile=lab.endpoints["ca_file"]),
                     headers={"Authorization": f"Bearer {token or lab.admin_token}"})
    resp.raise_for_status()
    return resp.json()


def _agent(lab: LabHandle, node: str, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    resp = httpx.request(method, lab.endpoints["gpu_agents"][node].rstrip("/") + path, timeout=10,
                         content=json.dumps(body).encode() if body is not None else None,
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    if resp.is_success:
        return resp.status_code, json.loads(resp.content or b"null")
    return resp.status_code, resp.text


def _trainers(lab: LabHandle) -> dict[str, str]:
    """Running, not deleting trainer pods -> their node."""
    pods: list[dict[str, Any]]
    pods = _get(lab, "/api/v1/namespaces/gpu-training/pods")["items"]
    return {p["metadata"]["name"]: p["spec"].get("nodeName", "") for p in pods
            if p.get("status", {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")}


def _two_trainers(lab: LabHandle, on: set[str] | None = None) -> dict[str, str] | None:
    """The trainer's two pods when both are Running (on these nodes, if given), else None."""
    pods = _trainers(lab)
    return pods if len(pods) == 2 and (on is None or set(pods.values()) <= on) else None


def _condition(node: dict[str, Any], kind: str) -> str | None:
    return next((c["status"] for c in node["status"].get("conditions", []) if c["type"] == kind), None)


def test_gpu_nodes_register_as_themselves_with_their_gpus_and_agents(lab: LabHandle) -> None:
    """Each GPU node is Ready with 8 nvidia.com/gpu, its Lease held by itself, and annotated by its agent, whose
    endpoint answers the runner (TokenReview) and refuses a node's identity that RBAC does not allow."""
    assert lab.endpoints["gpu_node_names"] == GPU_NODES and set(lab.endpoints["gpu_agents"]) == set(GPU_NODES)
    for name in GPU_NODES:
        node = _get(lab, f"/api/v1/nodes/{name}")
        assert node["status"]["capacity"]["nvidia.com/gpu"] == "8"
        assert node["metadata"]["labels"]["nvidia.com/gpu.present"] == "true"
        assert _condition(node, "Ready") == "True"
        assert node["metadata"]["annotations"]["gameday.dev/agent-endpoint"] == lab.endpoints["gpu_agents"][name]
        lease = _get(lab, f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}")
        assert lease["spec"]["holderIdentity"] == name
        code, devices = _agent(lab, name, "GET", "/v1/devices", lab.agent_token)
        assert code == 200 and len(devices["devices"]) == 8, devices
        code, _ = _agent(lab, name, "GET", "/v1/devices", lab.request_token("default", "nobody", audience="gameday-agent"))
        assert code == 403   # issued for the agents, but an account nobody allowed
        for token in (lab.runner_token, lab.token_for("system:node:lab-node-0")):
            code, _ = _agent(lab, name, "GET", "/v1/devices", token)
            assert code == 401   # not issued for the audience gameday-agent
    assert not _get(lab, "/api/v1/nodes/lab-node-0")["status"]["capacity"].get("nvidia.com/gpu")


def test_the_trainer_runs_on_the_gpu_nodes_and_prometheus_scrapes_the_gpu_side(lab: LabHandle) -> None:
    """The trainer's two 4-GPU pods are Running on GPU nodes, and the exporter and monitor jobs are up."""
    pods = poll(lambda: _two_trainers(lab), 60, "two trainer pods running")
    assert set(pods.values()) <= set(GPU_NODES)
    for job in ("gpu-exporter", "gpu-monitor"):
        def up(job: str = job) -> bool:
            resp = httpx.get(lab.endpoints["prometheus"] + "/api/v1/query", params={"query": f'up{{job="{job}"}}'},
                             timeout=10).json()["data"]["result"]
            return bool(resp) and resp[0]["value"][1] == "1"

        poll(up, 30, f"Prometheus job {job} up")


def test_xid_79_cordons_drains_reboots_and_uncordons_through_the_real_api(lab: LabHandle) -> None:
    """An XID 79 injected through the node's agent is read by the monitor, which cordons and drains the node (the
    trainer's pods come back on the other GPU node), the node's kubelet is down (NotReady) for the reboot, and the
    node is Ready, uncordoned and GPU-healthy after it; the agent's fault is reverted on its lease."""
    trainers = poll(lambda: _two_trainers(lab), 60, "two trainer pods running")
    victim = min(trainers.values())
    other = next(n for n in GPU_NODES if n != victim)
    code, body = _agent(lab, victim, "POST", "/v1/faults", lab.agent_token, {
        "fault_id": "xid79-test", "run_id": "gpu-nodes-test", "ttl_seconds": 30,
        "params": {"kind": "gpu-xid", "code": 79, "gpu_index": 2, "count": 1, "dcgm": True}})
    assert code in (200, 201), body
    poll(lambda: _get(lab, f"/api/v1/nodes/{victim}")["spec"].get("unschedulable"), 30, "the node cordoned")
    node = _get(lab, f"/api/v1/nodes/{victim}")
    assert node["metadata"]["annotations"]["gameday.dev/cordoned-by"] == "gpu-health-monitor"
    poll(lambda: _condition(_get(lab, f"/api/v1/nodes/{victim}"), "GpuHealthy") == "False", 30,
         "the node's GpuHealthy condition False")
    poll(lambda: _condition(_get(lab, f"/api/v1/nodes/{victim}"), "Ready") != "True", 30,
         "the rebooting node NotReady")
    moved = poll(lambda: _two_trainers(lab, {other}), 90, f"both trainer pods running on {other}")
    assert set(moved) != set(trainers)
    poll(lambda: not _get(lab, f"/api/v1/nodes/{victim}")["spec"].get("unschedulable")
         and _condition(_get(lab, f"/api/v1/nodes/{victim}"), "Ready") == "True", 90,
         "the rebooted node Ready and uncordoned")
    assert _condition(_get(lab, f"/api/v1/nodes/{other}"), "GpuHealthy") in (None, "True")
    assert not _get(lab, f"/api/v1/nodes/{other}")["spec"].get("unschedulable")
    assert _condition(_get(lab, f"/api/v1/nodes/{victim}"), "GpuHealthy") == "True"
    recovery = _monitor_sample(lab, f'gpu_monitor_last_recovery_seconds{{node="{victim}"}}')
    assert recovery is not None and recovery >= lab.endpoints["knobs"]["gpu_reboot_seconds"], recovery


def _monitor_sample(lab: LabHandle, series: str) -> float | None:
    """One sample of the GPU health monitor's /metrics (None when it has no such line)."""
    text = httpx.get(lab.endpoints["gpu_monitor"], timeout=10).text
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_down_stops_the_agents_and_the_monitor(lab: LabHandle) -> None:
    """After down no agent, exporter or monitor process of the lab is left (last: it stops the module's lab)."""
    pids = read_pids(lab.state_dir)
    gpu = {k: v for k, v in pids.items() if k == "gpu" or k.startswith("gpu-agent-")}
    assert set(gpu) == {"gpu", "gpu-agent-gpu-node-0", "gpu-agent-gpu-node-1"}
    plane.down(lab.state_dir)
    left = subprocess.run(["pgrep", "-f", str(lab.state_dir)], capture_output=True, text=True, check=False).stdout
    assert left.split() == []
    assert not any(pid_alive(p) for p in gpu.values())
