"""An ordinary kubectl session against the lab's real control plane: every step succeeds and does what it says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.testing import LabHandle, running_control_plane
from tests.conftest import poll

NS = "demo"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    """A real control plane with three kwok nodes for the whole module."""
    with running_control_plane(tmp_path_factory.mktemp("real-lab"), nodes=3) as handle:
        yield handle


def _ok(lab: LabHandle, *args: str, context: str = "lab", stdin: str | None = None) -> str:
    done = lab.kubectl(*args, context=context, stdin=stdin)
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


def _json(lab: LabHandle, *args: str) -> Any:
    return json.loads(_ok(lab, *args, "-o", "json"))


def _ready_replicas(lab: LabHandle, name: str) -> int:
    status = _json(lab, "-n", NS, "get", "deployment", name)["status"]
    return int(status.get("readyReplicas", 0))


def test_version_reports_the_pinned_server(lab: LabHandle) -> None:
    """kubectl version shows the lab's API server as Kubernetes v1.37.2, the client too."""
    version = _json(lab, "version")
    assert version["serverVersion"]["gitVersion"] == "v1.37.2"
    assert version["clientVersion"]["gitVersion"] == "v1.37.2"


def test_an_ordinary_session_succeeds_step_by_step(lab: LabHandle) -> None:
    """create namespace|deployment|configmap|secret|service|job, run, expose, rollout status, scale and patch all
    succeed as the runner identity, and each leaves the object it promised."""
    _ok(lab, "create", "namespace", NS)
    _ok(lab, "-n", NS, "create", "deployment", "web", "--image=nginx", "--replicas=2")
    _ok(lab, "-n", NS, "rollout", "status", "deployment/web", "--timeout=60s")
    assert _ready_replicas(lab, "web") == 2
    pods = _json(lab, "-n", NS, "get", "pods", "-l", "app=web")["items"]
    assert {p["status"]["phase"] for p in pods} == {"Running"}
    assert all(p["spec"]["nodeName"].startswith("kwok-node-") for p in pods)  # bound by the real scheduler
    assert all(p["status"].get("podIP", "").startswith("10.244.") for p in pods)

    _ok(lab, "-n", NS, "create", "configmap", "settings", "--from-literal=mode=fast")
    assert _json(lab, "-n", NS, "get", "configmap", "settings")["data"] == {"mode": "fast"}
    _ok(lab, "-n", NS, "create", "secret", "generic", "creds", "--from-literal=password=s3cret")
    assert _json(lab, "-n", NS, "get", "secret", "creds")["data"]["password"] == "czNjcmV0"
    _ok(lab, "-n", NS, "create", "service", "clusterip", "api", "--tcp=8080:8080")
    assert _json(lab, "-n", NS, "get", "service", "api")["spec"]["clusterIP"].startswith("10.96.")

    _ok(lab, "-n", NS, "expose", "deployment", "web", "--port=80")
    slices = poll(lambda: [s for s in _json(lab, "-n", NS, "get", "endpointslices", "-l",
                                            "kubernetes.io/service-name=web")["items"]
                           if len(s.get("endpoints") or []) == 2], 30, "the web Service's two endpoints")
    assert {a for e in slices[0]["endpoints"] for a in e["addresses"]} == {p["status"]["podIP"] for p in pods}

    _ok(lab, "-n", NS, "create", "job", "once", "--image=busybox", "--", "true")
    poll(lambda: _json(lab, "-n", NS, "get", "job", "once")["status"].get("succeeded") == 1, 30, "the Job to succeed")

    _ok(lab, "-n", NS, "run", "solo", "--image=nginx")
    poll(lambda: _json(lab, "-n", NS, "get", "pod", "solo")["status"].get("phase") == "Running", 30, "solo Running")

    _ok(lab, "-n", NS, "scale", "deployment", "web", "--replicas=4")
    poll(lambda: _ready_replicas(lab, "web") == 4, 30, "four ready replicas")

    _ok(lab, "-n", NS, "patch", "deployment", "web", "-p", '{"spec":{"template":{"metadata":{"labels":{"rev":"2"}}}}}')
    _ok(lab, "-n", NS, "rollout", "status", "deployment/web", "--timeout=60s")
    pods = _json(lab, "-n", NS, "get", "pods", "-l", "app=web")["items"]
    assert len([p for p in pods if p["metadata"]["labels"].get("rev") == "2" and "deletionTimestamp" not in p["metadata"]]) == 4


def test_cordon_and_drain_move_pods_off_a_node(lab: LabHandle) -> None:
    """cordon marks a node unschedulable and drain evicts its pods, which their ReplicaSet recreates elsewhere."""
    _ok(lab, "create", "namespace", "drain-demo")
    _ok(lab, "-n", "drain-demo", "create", "deployment", "spread", "--image=nginx", "--replicas=6")
    _ok(lab, "-n", "drain-demo", "rollout", "status", "deployment/spread", "--timeout=60s")
    target = "kwok-node-1"
    _ok(lab, "cordon", target, context="lab-admin")
    assert _json(lab, "get", "node", target)["spec"]["unschedulable"] is True
    _ok(lab, "drain", target, "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=60s",
        context="lab-admin")

    def placed() -> list[str] | None:
        items = _json(lab, "-n", "drain-demo", "get", "pods")["items"]
        live = [p for p in items if "deletionTimestamp" not in p["metadata"] and p["status"].get("phase") == "Running"]
        nodes = [p["spec"]["nodeName"] for p in live]
        return nodes if len(nodes) == 6 else None

    assert target not in poll(placed, 60, "six running pods after the drain")
    _ok(lab, "uncordon", target, context="lab-admin")
    assert not _json(lab, "get", "node", target)["spec"].get("unschedulable")


def test_rbac_answers_for_each_identity(lab: LabHandle) -> None:
    """auth can-i: the runner may create pods, a namespace's default service account may not, admin may do all."""
    assert _ok(lab, "auth", "can-i", "create", "pods", "-n", "default").strip() == "yes"
    denied = lab.kubectl("auth", "can-i", "create", "pods", "-n", "default",
                         "--as=system:serviceaccount:default:default", context="lab-admin")
    assert (denied.returncode, denied.stdout.strip()) == (1, "no")
    assert _ok(lab, "auth", "can-i", "*", "*", context="lab-admin").strip() == "yes"


def test_raw_metrics_come_from_the_real_server(lab: LabHandle) -> None:
    """get --raw /metrics serves kube-apiserver's own APF and request metrics, including kwok's node-high flow."""
    text = _ok(lab, "get", "--raw", "/metrics", context="lab-admin")
    assert "apiserver_flowcontrol_dispatched_requests_total" in text
    assert 'flow_schema="system-node-high"' in text
    assert "apiserver_request_duration_seconds_bucket" in text


def test_files_are_private(lab: LabHandle) -> None:
    """The kubeconfig, the token file and every private key are readable by their owner only."""
    private = [lab.kubeconfig, lab.state_dir / "pki" / "tokens.csv", *Path(lab.state_dir / "pki").glob("*.key")]
    assert len(private) >= 5
    assert {p.stat().st_mode & 0o777 for p in private} == {0o600}
