"""Tests for lab.runtime.podstatus."""

from __future__ import annotations

from lab.runtime.podstatus import container_env, pod_status


def test_env_resolves_downward_api() -> None:
    """Literal values and fieldRefs (pod IP, name, node) end up in the program's env."""
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "node-0"}}
    container = {"env": [{"name": "A", "value": "1"},
                         {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                         {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}
    assert container_env(container, pod, "127.10.0.9") == {"A": "1", "IP": "127.10.0.9", "NODE": "node-0"}


def test_status_reports_ready_and_waiting() -> None:
    """A running ready pod is Running+Ready; a waiting one is Pending with the reason and not Ready."""
    pod = {"metadata": {"uid": "u"}, "spec": {"containers": [{"name": "c", "image": "lab/pause"}]}}
    ok = pod_status(pod, "127.10.0.1", "127.20.0.1", True, "t", "", "", 0)
    assert ok["phase"] == "Running" and ok["podIP"] == "127.10.0.1" and ok["hostIP"] == "127.20.0.1"
    assert {c["type"]: c["status"] for c in ok["conditions"]}["Ready"] == "True"
    bad = pod_status(pod, "127.10.0.1", "127.20.0.1", True, "", "ErrImagePull", "no", 0)
    assert bad["phase"] == "Pending" and bad["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImagePull"
    assert {c["type"]: c["status"] for c in bad["conditions"]}["Ready"] == "False"
