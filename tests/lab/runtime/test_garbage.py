"""Tests for lab.runtime.controllers.garbage: pods whose Deployment/DaemonSet owner is gone are deleted."""

from __future__ import annotations

from typing import Any

from lab.runtime.controllers.garbage import controller_ref
from lab.runtime.testing import wait_for


def _pod(name: str, owner: dict[str, Any] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if owner is not None:
        meta["ownerReferences"] = [owner]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "c", "image": "lab/pause"}]}}


def _ref(kind: str, name: str, uid: str, api_version: str = "apps/v1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": True}


def test_controller_ref_only_for_handled_kinds() -> None:
    """Deployment and DaemonSet controller references count; a Job's or a non-controller reference does not."""
    assert controller_ref(_pod("p", _ref("DaemonSet", "d", "u1")))["uid"] == "u1"
    assert controller_ref(_pod("p", _ref("Job", "j", "u2", "batch/v1"))) is None
    assert controller_ref(_pod("p", {**_ref("Deployment", "d", "u3"), "controller": False})) is None
    assert controller_ref(_pod("p", None)) is None


def test_orphans_of_deleted_owners_are_collected_and_others_kept(rt_lab: Any) -> None:
    """A pod owned by a DaemonSet that no longer exists, or by a Deployment of the same name but another uid,
    is deleted; a pod owned by a Job (a kind the lab does not run) is kept."""
    ns = rt_lab.namespace()
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "live"},
           "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "live"}},
                    "template": {"metadata": {"labels": {"app": "live"}},
                                 "spec": {"containers": [{"name": "c", "image": "lab/pause"}]}}}}
    rt_lab.apps.create_namespaced_deployment(ns, dep)
    rt_lab.core.create_namespaced_pod(ns, _pod("kept-job", _ref("Job", "j", "job-uid", "batch/v1")))
    rt_lab.core.create_namespaced_pod(ns, _pod("orphan-ds", _ref("DaemonSet", "ghost", "dead-uid-1")))
    rt_lab.core.create_namespaced_pod(ns, _pod("orphan-stale", _ref("Deployment", "live", "dead-uid-2")))

    def names() -> set[str]:
        return {p.metadata.name for p in rt_lab.core.list_namespaced_pod(ns).items}

    wait_for(lambda: not names() & {"orphan-ds", "orphan-stale"}, timeout=20, what="orphans collected")
    assert names() == {"kept-job"}
    assert "lab_gc_orphan_pods_deleted_total" in rt_lab.runtime.metrics()
