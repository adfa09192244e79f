"""Tests for lab.runtime.controllers.endpoints: subsets from pods, then readiness in a live lab."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.runtime.controllers.endpoints import build_subsets
from lab.runtime.testing import wait_for


def _pod(name: str, ip: str, ready: bool, labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "labels": labels},
            "spec": {"nodeName": "n", "containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"podIP": ip, "phase": "Running",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_build_subsets_splits_ready_and_resolves_named_ports() -> None:
    """Ready pods are addresses, unready ones notReadyAddresses; named targetPorts resolve; others are ignored."""
    svc = {"spec": {"selector": {"app": "a"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}}
    pods = [_pod("p1", "127.10.0.1", True, {"app": "a"}), _pod("p2", "127.10.0.2", False, {"app": "a"}),
            _pod("p3", "127.10.0.3", True, {"app": "b"})]
    [subset] = build_subsets(svc, pods)
    assert [a["ip"] for a in subset["addresses"]] == ["127.10.0.1"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["127.10.0.2"]
    assert subset["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]


def test_endpoints_follow_readiness(rt_lab: Any, tmp_path: Path) -> None:
    """A pod's address moves between notReadyAddresses and addresses as its readiness changes."""
    ns = rt_lab.namespace()
    flag = tmp_path / "ready"
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "flip"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "flip"}},
                    "template": {"metadata": {"labels": {"app": "flip"}, "annotations": {
                        "lab.gameday/program": "lab.runtime.testprograms:FileReadyProgram"}},
                        "spec": {"containers": [{"name": "c", "image": "lab/program",
                                                 "env": [{"name": "READY_FILE", "value": str(flag)}]}]}}}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "flip"},
           "spec": {"selector": {"app": "flip"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    rt_lab.apps.create_namespaced_deployment(ns, dep)
    rt_lab.core.create_namespaced_service(ns, svc)

    def subset() -> Any:
        eps = rt_lab.core.read_namespaced_endpoints("flip", ns) if _exists(rt_lab, ns) else None
        return eps.subsets[0] if eps is not None and eps.subsets else None

    got = wait_for(lambda: (s := subset()) and s.not_ready_addresses and s, what="not-ready address")
    assert not got.addresses
    flag.touch()
    got = wait_for(lambda: (s := subset()) and s.addresses and s, what="ready address")
    assert not got.not_ready_addresses and got.ports[0].port == 8080
    flag.unlink()
    wait_for(lambda: (s := subset()) and not s.addresses and s.not_ready_addresses, what="not ready again")


def _exists(rt_lab: Any, ns: str) -> bool:
    return any(e.metadata.name == "flip" for e in rt_lab.core.list_namespaced_endpoints(ns).items)
