"""Tests for lab.gpu.monitor: kernel-log XIDs become catalogue actions against a real lab API server."""

from __future__ import annotations

import pytest

from tests.lab.gpu.conftest import Cluster, MonitorProcess, append_xid, wait_for

NODE, OTHER = "gpu-node-0", "gpu-node-1"


def _detected(monitor: MonitorProcess, code: int, node: str = NODE) -> float:
    return monitor.value(f'gpu_monitor_xid_detected_total{{code="{code}",node="{node}"}}')


def test_xid_79_cordons_and_drains_the_node(cluster: Cluster, monitor: MonitorProcess) -> None:
    """XID 79 cordons the node, evicts its pods except the DaemonSet pod and marks GpuHealthy False."""
    assert not cluster.node(NODE)["spec"].get("unschedulable")
    append_xid(monitor.kmsg[NODE], 79)
    wait_for(lambda: cluster.pods(NODE) == [f"dcgm-{NODE}"], 15, "the drain")
    node = cluster.node(NODE)
    assert node["spec"]["unschedulable"] is True
    assert "gameday.dev/reboot-requested" in node["metadata"]["annotations"]
    condition = cluster.condition(NODE, "GpuHealthy")
    assert condition is not None and condition["status"] == "False" and condition["reason"] == "Xid79"
    assert cluster.condition(NODE, "Ready") is not None, "the strategic merge kept the Ready condition"
    assert len(cluster.pods(OTHER)) == 4 and not cluster.node(OTHER)["spec"].get("unschedulable")
    wait_for(lambda: monitor.value("gpu_monitor_nodes_cordoned") == 1, 5, "the cordoned gauge")
    assert _detected(monitor, 79) == 1
    assert monitor.value("gpu_monitor_pods_evicted_total") == 3
    assert monitor.value('gpu_monitor_remediation_seconds_count{action="reboot"}') == 1
    assert monitor.value("gpu_monitor_detection_seconds_count") == 1


def test_xid_13_restarts_only_gpu_pods(cluster: Cluster, monitor: MonitorProcess) -> None:
    """XID 13 (old driver format) deletes the node's GPU pods, leaves the others and does not cordon."""
    append_xid(monitor.kmsg[NODE], 13, old_driver=True)
    wait_for(lambda: cluster.pods(NODE) == [f"dcgm-{NODE}", f"web-{NODE}"], 15, "the GPU pods to go")
    assert not cluster.node(NODE)["spec"].get("unschedulable")
    condition = cluster.condition(NODE, "GpuHealthy")
    assert condition is not None and condition["status"] == "True"
    assert monitor.value("gpu_monitor_pods_restarted_total") == 2
    assert monitor.value("gpu_monitor_nodes_cordoned") == 0


def test_xid_43_is_counted_and_ignored(cluster: Cluster, monitor: MonitorProcess) -> None:
    """XID 43 is detected but changes nothing on the node or its pods."""
    before = cluster.node(NODE)
    append_xid(monitor.kmsg[NODE], 43)
    wait_for(lambda: _detected(monitor, 43) == 1, 15, "the detection")
    after = cluster.node(NODE)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert len(cluster.pods(NODE)) == 4
    assert cluster.condition(NODE, "GpuHealthy") is None


@pytest.mark.parametrize("code", [46, 119])
def test_reset_gpu_codes_mark_the_gpu_and_restart_pods(
    cluster: Cluster, monitor: MonitorProcess, code: int
) -> None:
    """Reset-GPU codes annotate the node with the GPU's PCI address (dots for colons) and restart its GPU pods."""
    append_xid(monitor.kmsg[OTHER], code, pci="0000:2a:00")
    wait_for(lambda: len(cluster.pods(OTHER)) == 2, 15, "the GPU pods to go")
    assert "gameday.dev/gpu-reset-0000.2a.00" in cluster.node(OTHER)["metadata"]["annotations"]
    condition = cluster.condition(OTHER, "GpuHealthy")
    assert condition is not None and condition["status"] == "False"
    assert len(cluster.pods(NODE)) == 4


def test_repeated_xid_is_counted_but_acted_on_once(cluster: Cluster, monitor: MonitorProcess) -> None:
    """Three XID 94 lines within the dedup window are three detections and one app restart."""
    for _ in range(3):
        append_xid(monitor.kmsg[NODE], 94)
    wait_for(lambda: _detected(monitor, 94) == 3, 15, "three detections")
    assert monitor.value(f'gpu_monitor_actions_total{{action="restart-app",code="94",node="{NODE}"}}') == 1


def test_running_gpu_pods_gauge_follows_the_cluster(cluster: Cluster, monitor: MonitorProcess) -> None:
    """The per-node gauge counts Running pods that use GPUs and drops when XID 31 restarts them."""
    gauge = f'gpu_monitor_gpu_pods_running{{node="{NODE}"}}'
    for name in (f"train-{NODE}-0", f"web-{NODE}"):
        pod = cluster.call("GET", f"/api/v1/namespaces/default/pods/{name}")
        cluster.call(
            "PATCH",
            f"/api/v1/namespaces/default/pods/{name}/status",
            {"status": {"phase": "Running"}},
            "application/merge-patch+json",
        )
        assert pod["metadata"]["name"] == name
    wait_for(lambda: monitor.value(gauge) == 1, 10, "one running GPU pod")
    append_xid(monitor.kmsg[NODE], 31)
    wait_for(
        lambda: monitor.value(gauge) == 0 and monitor.value("gpu_monitor_pods_restarted_total") == 2,
        10,
        "the restart to show",
    )


def test_stock_blueprint_uses_only_metrics_the_monitor_exports(monitor: MonitorProcess) -> None:
    """Every gpu_monitor_* name in blueprints/library/gpu-xid-ladder.yaml is served by the monitor."""
    import re
    from pathlib import Path

    text = (
        Path(__file__).resolve().parents[3] / "blueprints" / "library" / "gpu-xid-ladder.yaml"
    ).read_text()
    used = set(re.findall(r"gpu_monitor_\w+", text))
    served = set(re.findall(r"^# TYPE (\w+)", monitor.metrics(), re.MULTILINE))
    served |= {f"{n}_total" for n in served} | {
        f"{n}_{s}" for n in served for s in ("sum", "count", "bucket")
    }
    assert used and used <= served, used - served
