"""Tests for lab.runtime.controllers.nodelifecycle: staleness, taints, eviction times, then a live pause."""

from __future__ import annotations

import time
from typing import Any

from lab.runtime.controllers.nodelifecycle import UNREACHABLE, desired_taints, eviction_due, lease_stale
from lab.runtime.testing import wait_for


def test_lease_stale_uses_renew_time_or_first_sight() -> None:
    """A node is stale once its last renewal (or first sighting) is older than the grace period."""
    assert not lease_stale(100.0, 0.0, 130.0, 40.0)
    assert lease_stale(100.0, 0.0, 141.0, 40.0)
    assert lease_stale(None, 0.0, 41.0, 40.0)


def test_desired_taints_add_and_remove_lifecycle_taints() -> None:
    """Unreachable nodes get NoSchedule+NoExecute taints, kept stable; other taints stay; cordon adds unschedulable."""
    node = {"spec": {"taints": [{"key": "mine", "effect": "NoSchedule"}]}}
    taints = desired_taints(node, True)
    assert {(t["key"], t["effect"]) for t in taints} == {
        ("mine", "NoSchedule"), (UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
    assert desired_taints({"spec": {"taints": taints}}, True) == taints
    assert desired_taints({"spec": {"taints": taints}}, False) == [{"key": "mine", "effect": "NoSchedule"}]
    cordoned = desired_taints({"spec": {"unschedulable": True}}, False)
    assert [t["key"] for t in cordoned] == ["node.kubernetes.io/unschedulable"]


def test_eviction_due_follows_tolerations() -> None:
    """No toleration: default timeout; tolerationSeconds: that long; toleration without seconds: never."""
    taint = {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2024-01-01T00:00:00Z"}
    base = 1704067200.0
    assert eviction_due({"spec": {}}, taint, 300, 10) == base + 30
    tol = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}
    assert eviction_due({"spec": {"tolerations": [{**tol, "tolerationSeconds": 50}]}}, taint, 300, 10) == base + 5
    assert eviction_due({"spec": {"tolerations": [tol]}}, taint, 300, 10) is None


def _pod(name: str, node: str, tolerate: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeName": node, "containers": [{"name": "c", "image": "lab/pause"}]}
    if tolerate:
        spec["tolerations"] = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def test_paused_node_goes_unknown_taints_evicts_and_recovers(rt_lab: Any) -> None:
    """Stopping a node's lease renewals makes it NotReady with the unreachable taint, evicts untolerating pods
    after the (scaled) timeout, keeps tolerating ones, and resuming brings the node back."""
    ns = rt_lab.namespace()
    node = rt_lab.node_names[1]
    rt_lab.core.create_namespaced_pod(ns, _pod("plain", node, False))
    rt_lab.core.create_namespaced_pod(ns, _pod("tolerant", node, True))
    wait_for(lambda: all(p.status.phase == "Running" for p in rt_lab.core.list_namespaced_pod(ns).items)
             and len(rt_lab.core.list_namespaced_pod(ns).items) == 2, what="pods running")

    def ready_status() -> str:
        conds = rt_lab.core.read_node(node).status.conditions or []
        return next((c.status for c in conds if c.type == "Ready"), "")

    rt_lab.runtime.control(node, "pause")
    try:
        paused_at = time.monotonic()
        wait_for(lambda: ready_status() == "Unknown", timeout=20, what="Ready=Unknown")
        assert time.monotonic() - paused_at > 2.0  # no earlier than most of the 4 s grace period
        taints = wait_for(lambda: rt_lab.core.read_node(node).spec.taints, what="taints")
        assert {(t.key, t.effect) for t in taints} >= {(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")}
        wait_for(lambda: [p.metadata.name for p in rt_lab.core.list_namespaced_pod(ns).items] == ["tolerant"],
                 timeout=30, what="untolerating pod evicted")
    finally:
        rt_lab.runtime.control(node, "resume")
    wait_for(lambda: ready_status() == "True", timeout=20, what="Ready again")
    wait_for(lambda: not rt_lab.core.read_node(node).spec.taints, timeout=20, what="taints removed")
    assert [p.metadata.name for p in rt_lab.core.list_namespaced_pod(ns).items] == ["tolerant"]
