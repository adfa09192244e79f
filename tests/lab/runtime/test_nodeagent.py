"""Tests for lab.runtime.nodeagent on the real plane: the Node a real node registers, and lease renewals that the
real API server's APF dispatches at node-high and the runtime counts."""

from __future__ import annotations

import re
import ssl

import httpx

from tests.conftest import poll
from tests.lab.runtime.conftest import REAL_NODES, RuntimeLab


def _dispatched(rt_lab: RuntimeLab, level: str) -> float:
    """apiserver_flowcontrol_dispatched_requests_total summed over one priority level."""
    resp = httpx.get(f"{rt_lab.handle.url}/metrics", timeout=10,
                     verify=ssl.create_default_context(cafile=rt_lab.handle.ca_file),
                     headers={"Authorization": f"Bearer {rt_lab.handle.admin_token}"})
    resp.raise_for_status()
    return sum(float(line.rsplit(" ", 1)[1]) for line in resp.text.splitlines()
               if line.startswith("apiserver_flowcontrol_dispatched_requests_total")
               and f'priority_level="{level}"' in line)


def test_nodes_have_capacity_labels_and_addresses(rt_lab: RuntimeLab) -> None:
    """A real CPU node carries cpu, memory and 110 pods (no GPUs), its hostname and OS labels, and an InternalIP and
    a Hostname address."""
    for name in REAL_NODES:
        node = rt_lab.core.read_node(name)
        capacity = node.status.capacity
        assert set(capacity) == {"cpu", "memory", "pods"} and capacity["pods"] == "110"
        assert node.status.allocatable == capacity
        assert node.metadata.labels["kubernetes.io/hostname"] == name
        assert node.metadata.labels["kubernetes.io/os"] == "linux"
        assert {(a.type, a.address) for a in node.status.addresses if a.type == "Hostname"} == {("Hostname", name)}
        assert {a.type for a in node.status.addresses} == {"InternalIP", "Hostname"}


def test_leases_are_renewed_as_node_high(rt_lab: RuntimeLab) -> None:
    """The nodes' own requests (a renewal a second per node, with no pod changing) are dispatched at APF's node-high
    priority level, and the runtime counts its renewals as ok."""
    before = _dispatched(rt_lab, "node-high")
    poll(lambda: _dispatched(rt_lab, "node-high") >= before + 2 * len(REAL_NODES), 15, "node-high dispatches")
    assert re.search(r'lab_node_lease_renewals_total\{result="ok"\} [1-9]', rt_lab.metrics())
