"""Tests for lab.gpu.nodes: real node agents per GPU node, their kernel logs, fake NVML and annotations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.gpu.exporter import NodeSource, serve
from lab.gpu.nodes import ENDPOINT_ANNOTATION, GpuNodeHandle, start_gpu_agents, stop_gpu_agents
from tests.lab.gpu.conftest import GPU_NODES, Cluster, http, start_monitor, stop_process, wait_for


@pytest.fixture
def agents(tmp_path: Path, cluster: Cluster) -> Iterator[list[GpuNodeHandle]]:
    """One agent per GPU node (as the lab's gameday-agent identity); all stopped afterwards."""
    handles = start_gpu_agents(tmp_path / "state", cluster.api.url, cluster.agent_token, GPU_NODES,
                               ca_file=cluster.api.ca_file)
    try:
        yield handles
    finally:
        stop_gpu_agents(handles)


def _inject(handle: GpuNodeHandle, runner_token: str, params: dict[str, Any], fault_id: str) -> None:
    body = {"fault_id": fault_id, "run_id": "lab-gpu-test", "ttl_seconds": 30, "params": params}
    status, out = http(handle.endpoint + "/v1/faults", "POST", runner_token, body)
    assert status in (200, 201), out


def test_agents_start_and_annotate_their_nodes(cluster: Cluster, agents: list[GpuNodeHandle]) -> None:
    """Each node gets its agent's loopback endpoint and eight GPU PCI addresses; the agent answers /healthz."""
    for h in agents:
        annotations = cluster.node(h.node)["metadata"]["annotations"]
        assert annotations[ENDPOINT_ANNOTATION] == h.endpoint and h.endpoint.startswith("http://127.0.0.1:")
        pcis = [annotations[f"gameday.dev/gpu-pci-{i}"] for i in range(8)]
        assert pcis == h.pci_addresses and pcis[0] == "0000:18:00.0" and len(set(pcis)) == 8
        assert h.kmsg_path == h.directory / "kmsg" and h.kmsg_path.exists()
        assert http(h.endpoint + "/healthz")[0] == 200


def test_stop_removes_processes_and_annotations(cluster: Cluster, tmp_path: Path) -> None:
    """Stopping the agents ends their processes and takes the annotations back off the nodes."""
    handles = start_gpu_agents(tmp_path / "state", cluster.api.url, cluster.agent_token, GPU_NODES[:1],
                               ca_file=cluster.api.ca_file)
    stop_gpu_agents(handles)
    assert handles[0].proc.returncode is not None
    annotations = cluster.node(GPU_NODES[0])["metadata"].get("annotations") or {}
    assert not any(k.startswith("gameday.dev/") for k in annotations)


def test_injected_xid_lands_in_kmsg_and_the_monitor_cordons(
    cluster: Cluster, agents: list[GpuNodeHandle], tmp_path: Path
) -> None:
    """A gpu-xid 79 injected through the agent is a driver line in the node's kernel log; the monitor drains."""
    h = agents[0]
    monitor = start_monitor(tmp_path, cluster, {a.node: a.kmsg_path for a in agents},
                            extra=["--reboot-seconds", "6"])
    try:
        _inject(
            h,
            cluster.api.agent_token,
            {"kind": "gpu-xid", "code": 79, "gpu_index": 2, "dcgm": False},
            "xid-79",
        )
        line = wait_for(lambda: h.kmsg_path.read_text().strip(), 10, "the XID line")
        assert line.startswith("<3>NVRM: Xid (PCI:0000:3a:00): 79, pid=")
        wait_for(lambda: cluster.node(h.node)["spec"].get("unschedulable"), 15, "the cordon")
        wait_for(lambda: cluster.pods(h.node) == [f"dcgm-{h.node}"], 15, "the drain")
        assert cluster.node(agents[1].node)["spec"].get("unschedulable") is not True
        detection = monitor.value("gpu_monitor_detection_seconds_sum")
        remediation = monitor.value('gpu_monitor_remediation_seconds_sum{action="reboot"}')
        print(f"\nseconds: detection {detection:.2f}, cordon+drain done {remediation:.2f}")
        assert 0 <= detection <= remediation
    finally:
        stop_process(monitor.proc)


def test_fake_nvml_degrade_through_agent_shows_in_exporter(
    cluster: Cluster, agents: list[GpuNodeHandle]
) -> None:
    """A gpu-degrade clock lock through the agent's fake NVML shows as DCGM_FI_DEV_SM_CLOCK for that GPU."""
    h = agents[1]
    server, port = serve([NodeSource(a.node, a.nvml_state_path, a.kmsg_path) for a in agents])
    try:
        _inject(
            h, cluster.api.agent_token, {"kind": "gpu-degrade", "gpu_index": 3, "sm_clock_mhz": 600}, "deg-1"
        )

        def clock() -> bool:
            text = str(http(f"http://127.0.0.1:{port}/metrics")[1])
            host = f'Hostname="{h.node}"'
            return any(
                ln.startswith("DCGM_FI_DEV_SM_CLOCK{")
                and host in ln
                and 'gpu="3"' in ln
                and ln.endswith(" 600.0")
                for ln in text.splitlines()
            )

        wait_for(clock, 10, "the locked clock in the exporter")
    finally:
        server.shutdown()
        server.server_close()
