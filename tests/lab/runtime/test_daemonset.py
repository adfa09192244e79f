"""Tests for lab.runtime.controllers.daemonset: eligibility rules, then a live DaemonSet."""

from __future__ import annotations

import threading
import time
from typing import Any

from kubernetes import watch
from urllib3.exceptions import ProtocolError

from lab.runtime.controllers.daemonset import daemon_tolerations, should_run
from lab.runtime.testing import wait_for


def _node(labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None,
          unschedulable: bool = False) -> dict[str, Any]:
    return {"metadata": {"name": "n", "labels": labels or {}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable}}


def test_should_run_honours_selector_and_taints() -> None:
    """nodeSelector must match; custom NoSchedule taints need a toleration; lifecycle taints are tolerated."""
    spec = {"nodeSelector": {"gpu": "true"}}
    assert should_run(_node({"gpu": "true"}), spec)
    assert not should_run(_node({}), spec)
    assert not should_run(_node(taints=[{"key": "dedicated", "effect": "NoSchedule"}]), {})
    assert should_run(_node(taints=[{"key": "dedicated", "effect": "NoSchedule"}]),
                      {"tolerations": [{"key": "dedicated", "operator": "Exists"}]})
    unreachable = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
    cordon = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
    assert should_run(_node(taints=[unreachable, cordon], unschedulable=True), {})


def test_daemon_tolerations_keep_template_ones() -> None:
    """The template's own toleration for a key wins over the default one."""
    own = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
    tols = daemon_tolerations({"tolerations": [own]})
    assert [t for t in tols if t["key"] == own["key"]] == [own]
    assert len(tols) == 6


def test_daemonset_one_pod_per_eligible_node(rt_lab: Any) -> None:
    """A DaemonSet runs one pod per selected node, skips a node with an untolerated taint, and reports status."""
    ns = rt_lab.namespace()
    cpu_nodes = [n for n in rt_lab.node_names if not n.startswith("gpu-")]
    tainted = cpu_nodes[-1]
    rt_lab.core.patch_node(tainted, {"spec": {"taints": [{"key": "lab/test-dedicated", "effect": "NoSchedule"}]}})
    try:
        ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
              "spec": {"selector": {"matchLabels": {"app": "agent"}},
                       "template": {"metadata": {"labels": {"app": "agent"}},
                                    "spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                             "containers": [{"name": "c", "image": "lab/pause"}]}}}}
        rt_lab.apps.create_namespaced_daemon_set(ns, ds)
        want = len(rt_lab.node_names) - 1

        def placed() -> Any:
            pods = rt_lab.core.list_namespaced_pod(ns).items
            st = rt_lab.apps.read_namespaced_daemon_set("agent", ns).status
            return len(pods) == want and st.desired_number_scheduled == want and st.number_ready == want and pods

        pods = wait_for(placed, what="daemon pods on every eligible node")
        nodes = sorted(p.spec.node_name for p in pods)
        assert tainted not in nodes and len(set(nodes)) == want
    finally:
        rt_lab.core.patch_node(tainted, {"spec": {"taints": []}})
    wait_for(lambda: len(rt_lab.core.list_namespaced_pod(ns).items) == want + 1, what="pod on untainted node")


def test_daemonset_pods_land_on_cordoned_nodes_like_the_real_controller(rt_lab: Any) -> None:
    """A cordoned node still gets a daemon pod (the real controller tolerates node.kubernetes.io/unschedulable)."""
    ns = rt_lab.namespace()
    node = rt_lab.node_names[0]
    rt_lab.core.patch_node(node, {"spec": {"unschedulable": True}})
    try:
        ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
              "spec": {"selector": {"matchLabels": {"app": "agent"}},
                       "template": {"metadata": {"labels": {"app": "agent"}},
                                    "spec": {"containers": [{"name": "c", "image": "lab/pause"}]}}}}
        rt_lab.apps.create_namespaced_daemon_set(ns, ds)
        pods = wait_for(lambda: (p := rt_lab.core.list_namespaced_pod(ns).items) and len(p) == len(rt_lab.node_names)
                        and p, what="daemon pods on all nodes")
        assert node in {p.spec.node_name for p in pods}
    finally:
        rt_lab.core.patch_node(node, {"spec": {"unschedulable": False}})


def _pod_count(lab: Any, ns: str) -> int:
    return len(lab.core.list_namespaced_pod(ns).items)


def _zero_for(lab: Any, ns: str, seconds: float) -> bool:
    """Whether the namespace holds no pod at any look over the next ``seconds``."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        if _pod_count(lab, ns):
            return False
        time.sleep(0.2)
    return True


def test_daemonset_deleted_mid_rollout_leaves_no_pods(big_lab: Any) -> None:
    """Deleting a DaemonSet while it is still creating pods on 200 nodes stops the rollout short of them
    (a creation batch already sent may still land) and the garbage collector removes every pod for good."""
    ns = big_lab.namespace()
    seen: set[str] = set()
    watcher = watch.Watch()

    done = threading.Event()

    def record() -> None:
        try:
            for event in watcher.stream(big_lab.core.list_namespaced_pod, ns, timeout_seconds=120):
                seen.add(event["object"].metadata.name)
        except ProtocolError:  # the connection closed under a stopped watch
            if not done.is_set():
                raise

    recorder = threading.Thread(target=record, daemon=True)
    recorder.start()
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "storm"},
          "spec": {"selector": {"matchLabels": {"app": "storm"}},
                   "template": {"metadata": {"labels": {"app": "storm"}},
                                "spec": {"containers": [{"name": "c", "image": "lab/pause"}]}}}}
    big_lab.apps.create_namespaced_daemon_set(ns, ds)
    at_delete = wait_for(lambda: _pod_count(big_lab, ns), interval=0.01, what="the rollout to start")
    big_lab.apps.delete_namespaced_daemon_set("storm", ns)
    assert at_delete < len(big_lab.node_names), "the rollout finished before the delete: nothing was tested"
    # the old bug kept creating pods for seconds after the delete: three quiet seconds at zero, within 30
    wait_for(lambda: _zero_for(big_lab, ns, 3.0), timeout=30, what="no daemon pod for three seconds running")
    done.set()
    watcher.stop()
    recorder.join(timeout=10)
    assert seen and len(seen) < len(big_lab.node_names), f"all {len(seen)} daemon pods were created: nothing stopped"
