"""Tests for lab.runtime.podstatus."""

from __future__ import annotations

from lab.runtime.podstatus import pod_status


def test_status_reports_ready_and_waiting() -> None:
    """A running ready pod is Running+Ready; a waiting one is Pending with the reason and not Ready."""
    pod = {"metadata": {"uid": "u"}, "spec": {"containers": [{"name": "c", "image": "lab/pause"}]}}
    ok = pod_status(pod, "127.10.0.1", "127.20.0.1", True, "t", "", "", 0)
    assert ok["phase"] == "Running" and ok["podIP"] == "127.10.0.1" and ok["hostIP"] == "127.20.0.1"
    assert {c["type"]: c["status"] for c in ok["conditions"]}["Ready"] == "True"
    bad = pod_status(pod, "127.10.0.1", "127.20.0.1", True, "", "ErrImagePull", "no", 0)
    assert bad["phase"] == "Pending" and bad["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImagePull"
    assert {c["type"]: c["status"] for c in bad["conditions"]}["Ready"] == "False"
