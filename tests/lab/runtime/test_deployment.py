"""Tests for lab.runtime.controllers.deployment: the rollout plan, then scaling in a live lab."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from lab.runtime.controllers.deployment import plan, slow_start
from lab.runtime.testing import wait_for


def _pod(name: str, ready: bool) -> dict[str, Any]:
    return {"metadata": {"name": name, "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"nodeName": "n"},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_plan_scales_up_and_down() -> None:
    """Missing replicas are created; extra ones deleted, unready first."""
    assert plan(3, {}, [_pod("a", True)], []) == (2, [])
    create, delete = plan(1, {}, [_pod("a", True), _pod("b", False)], [])
    assert create == 0 and [p["metadata"]["name"] for p in delete] == ["b"]


def test_plan_rolling_update_respects_surge_and_unavailable() -> None:
    """With 4 replicas (surge 1, unavailable 1) a rollout starts with one new pod and one old deletion."""
    old = [_pod(f"o{i}", True) for i in range(4)]
    create, delete = plan(4, {}, [], old)
    assert create == 1 and len(delete) == 1


def test_plan_recreate_deletes_old_first() -> None:
    """Recreate deletes every old pod before creating new ones."""
    create, delete = plan(2, {"type": "Recreate"}, [], [_pod("o", True)])
    assert create == 0 and len(delete) == 1


def test_slow_start_doubles_batches_and_stops_on_failure() -> None:
    """Batches grow 1, 2, 4...; a failing batch stops the rest and its error is raised."""
    finished = {"n": 0}
    started_at: list[int] = []

    async def act(item: int) -> None:
        started_at.append(finished["n"])  # items of one batch all start before any of them finishes
        await asyncio.sleep(0)
        finished["n"] += 1

    asyncio.run(slow_start(list(range(7)), act))
    assert [started_at.count(n) for n in sorted(set(started_at))] == [1, 2, 4]
    seen: list[int] = []

    async def record(item: int) -> None:
        seen.append(item)
        if item == 1:
            raise ValueError("boom")

    with pytest.raises(ValueError):
        asyncio.run(slow_start(list(range(10)), record))
    assert sorted(seen) == [0, 1, 2]


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "lab/pause"}]}}}}


def test_deployment_scales_up_and_down(rt_lab: Any) -> None:
    """Pods of a Deployment are scheduled, run and become Ready; scaling changes their number, 0 deletes all."""
    ns = rt_lab.namespace()
    rt_lab.apps.create_namespaced_deployment(ns, _deployment("web", 3))

    def status(want: int) -> Any:
        dep = rt_lab.apps.read_namespaced_deployment("web", ns)
        pods = rt_lab.core.list_namespaced_pod(ns, label_selector="app=web").items
        ok = (dep.status.ready_replicas or 0) == want and len(pods) == want \
            and dep.status.observed_generation == dep.metadata.generation
        return ok and pods

    pods = wait_for(lambda: status(3), what="3 ready replicas")
    assert all(p.status.phase == "Running" and p.spec.node_name for p in pods)
    assert len({p.status.pod_ip for p in pods}) == 3
    assert all(p.metadata.owner_references[0].kind == "Deployment" for p in pods)
    assert all("pod-template-hash" in p.metadata.labels for p in pods)
    rt_lab.apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 5}})
    wait_for(lambda: status(5), what="5 ready replicas")
    rt_lab.apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 0}})
    wait_for(lambda: not rt_lab.core.list_namespaced_pod(ns, label_selector="app=web").items, what="no pods")
    dep = wait_for(lambda: (d := rt_lab.apps.read_namespaced_deployment("web", ns)).status.replicas == 0 and d,
                   what="status replicas 0")
    assert (dep.status.ready_replicas or 0) == 0


def test_deployment_rollout_replaces_pods(rt_lab: Any) -> None:
    """Changing the template replaces every pod with ones carrying the new template hash."""
    ns = rt_lab.namespace()
    rt_lab.apps.create_namespaced_deployment(ns, _deployment("roll", 2))
    first = wait_for(lambda: (p := rt_lab.core.list_namespaced_pod(ns).items) and len(p) == 2
                     and all(x.status.phase == "Running" for x in p) and p, what="2 pods")
    old_hash = first[0].metadata.labels["pod-template-hash"]
    patch = {"spec": {"template": {"metadata": {"labels": {"app": "roll", "v": "2"}}}}}
    rt_lab.apps.patch_namespaced_deployment("roll", ns, patch)

    def rolled() -> bool:
        dep = rt_lab.apps.read_namespaced_deployment("roll", ns)
        pods = rt_lab.core.list_namespaced_pod(ns).items
        return (len(pods) == 2 and all(p.metadata.labels["pod-template-hash"] != old_hash for p in pods)
                and (dep.status.updated_replicas or 0) == 2 and (dep.status.ready_replicas or 0) == 2)

    wait_for(rolled, what="rollout done")


def test_deployment_deleted_mid_scale_up_leaves_no_pods(big_lab: Any) -> None:
    """Deleting a Deployment while it is still creating 400 pods stops creation; stragglers are collected."""
    ns = big_lab.namespace()
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "wide"},
           "spec": {"replicas": 400, "selector": {"matchLabels": {"app": "wide"}},
                    "template": {"metadata": {"labels": {"app": "wide"}},
                                 "spec": {"containers": [{"name": "c", "image": "lab/pause"}]}}}}
    big_lab.apps.create_namespaced_deployment(ns, dep)

    def names() -> set[str]:
        return {p.metadata.name for p in big_lab.core.list_namespaced_pod(ns).items}

    existing = wait_for(names, interval=0.01, what="the scale-up to start")
    big_lab.apps.delete_namespaced_deployment("wide", ns)
    assert len(existing) < 400, "the scale-up finished before the delete: nothing was tested"
    # Creates in flight when the delete lands may still land (as in a real cluster); the garbage collector
    # deletes them. Creation must stop: within 30 s the namespace is empty and stays empty for 3 s.
    late: set[str] = set()
    quiet_since, deadline = time.monotonic(), time.monotonic() + 30
    while time.monotonic() - quiet_since < 3.0:
        assert time.monotonic() < deadline, f"pods kept appearing after the delete: {sorted(late)[:5]}"
        now = names()
        late |= now - existing
        if now:
            quiet_since = time.monotonic()
        time.sleep(0.2)
