"""Tests for lab.runtime.nodeagent: node objects, and live lease renewal under the node's own identity."""

from __future__ import annotations

import re
import urllib.request
from typing import Any

from lab.runtime.testing import wait_for


def _dispatched(rt_lab: Any, level: str) -> float:
    req = urllib.request.Request(f"{rt_lab.api.url}/metrics",
                                 headers={"Authorization": f"Bearer {rt_lab.api.admin_token}"})
    text = urllib.request.urlopen(req, timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("apiserver_flowcontrol_dispatched_requests_total") and f'priority_level="{level}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_nodes_have_capacity_labels_and_addresses(rt_lab: Any) -> None:
    """CPU nodes carry cpu/memory/pods; GPU nodes also 8 nvidia.com/gpu and the gpu.present label."""
    nodes = {n.metadata.name: n for n in rt_lab.core.list_node().items}
    gpu = nodes["gpu-node-0"]
    assert gpu.status.capacity["nvidia.com/gpu"] == "8"
    assert gpu.metadata.labels["nvidia.com/gpu.present"] == "true"
    cpu = nodes["node-0"]
    assert "nvidia.com/gpu" not in cpu.status.capacity and cpu.status.capacity["pods"] == "110"
    assert {a.type for a in cpu.status.addresses} == {"InternalIP", "Hostname"}


def test_leases_are_renewed_as_node_high(rt_lab: Any) -> None:
    """Every node's lease renewTime advances, and renewals are dispatched at APF's node-high level."""
    coord = __import__("kubernetes").client.CoordinationV1Api(rt_lab.api.client())
    node = rt_lab.node_names[0]
    first = coord.read_namespaced_lease(node, "kube-node-lease")
    assert first.spec.holder_identity == node
    before = _dispatched(rt_lab, "node-high")
    wait_for(lambda: coord.read_namespaced_lease(node, "kube-node-lease").spec.renew_time > first.spec.renew_time,
             timeout=10, what="renewTime advances")
    wait_for(lambda: _dispatched(rt_lab, "node-high") > before, timeout=10, what="node-high dispatches")
    assert re.search(r'lab_node_lease_renewals_total\{result="ok"\} [1-9]', rt_lab.runtime.metrics())
