"""Tests for lab up/status/down (lab.cli, lab.runtime.lifecycle, lab.prometheus): a whole lab end to end,
GPU side (agents, exporter, monitor, training job) included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.exception
import dns.resolver
import pytest
import requests
from kubernetes import client

from lab.apiserver.users import read_sa_secret, sa_token
from lab.gpu.nodes import ENDPOINT_ANNOTATION
from lab.prometheus import find_binary
from lab.runtime.procs import pid_alive
from lab.runtime.testing import wait_for
from lab.training.netns import list_namespaces

MODEL = "model-server.inference.svc.cluster.local"
GPU_NODES = ["gpu-node-0", "gpu-node-1"]


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _require(ok: bool, reason: str) -> None:
    """Skip locally, fail in CI, when a component is missing."""
    if not ok:
        if IN_CI:
            pytest.fail(f"missing in CI: {reason}")
        pytest.skip(reason)


def _lab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, timeout=240, check=False)


@pytest.fixture(scope="module")
def lab_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """`python -m lab up` with 4 nodes (2 GPU) and the training job at time scale 10; always `down`."""
    _require(find_binary() is not None, "needs Prometheus: apt-get install -y prometheus")
    _require(os.geteuid() == 0, "the lab's DNS Service listens on port 53: run as root")
    state = tmp_path_factory.mktemp("lab")
    try:
        done = _lab("up", "--state-dir", str(state), "--nodes", "4", "--gpu-nodes", "2", "--time-scale", "10",
                    "--training")
        assert done.returncode == 0, done.stderr[-3000:]
        yield state, json.loads(done.stdout)
    finally:
        _lab("down", "--state-dir", str(state))


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention text (the state dir: agents, training ranks...)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmd and pid_alive(int(proc.name)):
                found.append(cmd)
    return found


def _resolve(server: str, name: str) -> list[str] | None:
    host, port = server.rsplit(":", 1)
    res = dns.resolver.Resolver(configure=False)
    res.nameservers, res.port, res.lifetime = [host], int(port), 1.0
    try:
        return sorted(r.address for r in res.resolve(name, "A"))
    except dns.exception.DNSException:
        return None


def test_up_writes_state_and_everything_is_ready(lab_up: tuple[Path, dict[str, Any]]) -> None:
    """After up: kubeconfig with lab (runner) and lab-admin contexts, all nodes Ready, all Deployments available."""
    state, endpoints = lab_up
    assert json.loads((state / "endpoints.json").read_text())["pids"] == endpoints["pids"]
    slot = endpoints["slot"]
    assert endpoints["dns"] == f"127.{96 + slot}.0.10:53" and endpoints["nodes"] == 4
    kubeconfig = (state / "kubeconfig").read_text()
    assert "current-context: lab\n" in kubeconfig and "name: lab-admin" in kubeconfig
    status = json.loads(_lab("status", "--state-dir", str(state)).stdout)
    assert status["nodes"] == {"total": 4, "ready": 4}
    assert all(c["alive"] for c in status["components"].values())
    want = {"apiserver", "runtime", "prometheus", "gpu", *(f"gpu-agent-{n}" for n in GPU_NODES)}
    assert set(status["components"]) == want


def test_prometheus_has_up_samples_for_every_target(lab_up: tuple[Path, dict[str, Any]]) -> None:
    """Prometheus reports up=1 for the API server, the runtime, itself and the GPU side's three endpoints."""
    _, endpoints = lab_up
    resp = requests.get(f"{endpoints['prometheus']}/api/v1/query", params={"query": "up"}, timeout=5).json()
    ups = {r["metric"]["job"]: r["value"][1] for r in resp["data"]["result"]}
    jobs = ("apiserver", "lab-runtime", "prometheus", "gpu-exporter", "gpu-monitor", "training")
    assert ups == dict.fromkeys(jobs, "1")


def _prom(endpoints: dict[str, Any], query: str) -> list[dict[str, Any]]:
    resp = requests.get(f"{endpoints['prometheus']}/api/v1/query", params={"query": query}, timeout=5)
    result: list[dict[str, Any]] = resp.json()["data"]["result"]
    return result


def _token(state: Path, username: str) -> str:
    users = json.loads((state / "users.json").read_text())
    return next(t for t, u in users.items() if u["username"] == username)


def _whoami(endpoints: dict[str, Any], admin: str, token: str) -> str:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    resp = requests.post(f"{endpoints['apiserver']}/apis/authentication.k8s.io/v1/tokenreviews", json=body,
                         headers={"Authorization": f"Bearer {admin}"}, timeout=5)
    return str(resp.json()["status"]["user"]["username"])


def test_gpu_nodes_have_agents_that_accept_the_runner_and_feed_prometheus(
    lab_up: tuple[Path, dict[str, Any]],
) -> None:
    """Each GPU Node names its agent, which answers /healthz, takes a gpu-xid from gameday-runner (not from
    a service account without an RBAC grant), and the XID reaches Prometheus through the exporter and the monitor; the trainer runs."""
    state, endpoints = lab_up
    admin, runner = _token(state, "admin"), _token(state, "gameday-runner")
    cfg = client.Configuration()
    cfg.host, cfg.api_key = endpoints["apiserver"], {"authorization": f"Bearer {admin}"}
    with client.ApiClient(cfg) as api:
        for node in GPU_NODES:
            annotations = client.CoreV1Api(api).read_node(node).metadata.annotations or {}
            assert annotations[ENDPOINT_ANNOTATION] == endpoints["gpu_agents"][node]
            assert requests.get(f"{annotations[ENDPOINT_ANNOTATION]}/healthz", timeout=5).json()["node"] == node
        trainer = client.AppsV1Api(api).read_namespaced_deployment("trainer", "gpu-training")
        assert trainer.status.ready_replicas == 2
    agent = endpoints["gpu_agents"][GPU_NODES[0]]
    fault = {"fault_id": "lab-up-xid", "run_id": "lab-up-test", "ttl_seconds": 60,
             "params": {"kind": "gpu-xid", "code": 43, "gpu_index": 1}}
    stranger = sa_token(read_sa_secret(state / "sa-secret"), "default", "not-the-runner")
    refused = requests.post(f"{agent}/v1/faults", json=fault, headers={"Authorization": f"Bearer {stranger}"},
                            timeout=10)
    assert refused.status_code == 403, refused.text
    assert "system:serviceaccount:default:not-the-runner" in refused.text
    resp = requests.post(f"{agent}/v1/faults", json=fault, headers={"Authorization": f"Bearer {runner}"}, timeout=10)
    assert resp.status_code == 201, resp.text
    try:
        query = f'DCGM_FI_DEV_XID_ERRORS{{Hostname="{GPU_NODES[0]}",gpu="1"}} == 43'
        wait_for(lambda: _prom(endpoints, query), timeout=20, what="XID 43 in Prometheus")
        seen = f'gpu_monitor_xid_detected_total{{node="{GPU_NODES[0]}",code="43"}}'
        wait_for(lambda: _prom(endpoints, seen), timeout=20, what="the monitor's XID count in Prometheus")
    finally:
        requests.delete(f"{agent}/v1/faults/lab-up-xid", headers={"Authorization": f"Bearer {runner}"}, timeout=10)
    assert _prom(endpoints, "training_step")
    assert _whoami(endpoints, admin, (state / "gpu-agent-token").read_text()) == \
        "system:serviceaccount:gameday:gameday-agent"
    assert _whoami(endpoints, admin, (state / "gpu-monitor-token").read_text()) == \
        "system:serviceaccount:kube-system:gpu-health-monitor"


def test_gateway_serves_through_dns_and_proxy(lab_up: tuple[Path, dict[str, Any]]) -> None:
    """The gateway Service answers inference requests (gateway → DNS → model-server)."""
    _, endpoints = lab_up
    resp = wait_for(lambda: _post(endpoints["gateway"] + "/v1/infer"), what="gateway answers")
    assert resp.status_code == 200


def _post(url: str) -> requests.Response | None:
    try:
        resp = requests.post(url, json={"prompt": "hi"}, timeout=2)
        return resp if resp.status_code == 200 else None
    except requests.RequestException:
        return None


def test_coredns_scaled_to_zero_breaks_dns_and_back_restores_it(lab_up: tuple[Path, dict[str, Any]]) -> None:
    """Scaling kube-system/coredns to 0 makes lookups at the kube-dns address fail; scaling back restores them."""
    _, endpoints = lab_up
    users = json.loads(Path(endpoints["users"]).read_text())
    admin = next(t for t, u in users.items() if u["username"] == "admin")
    cfg = client.Configuration()
    cfg.host, cfg.api_key = endpoints["apiserver"], {"authorization": f"Bearer {admin}"}
    with client.ApiClient(cfg) as api:
        apps = client.AppsV1Api(api)
        model_ips = wait_for(lambda: _resolve(endpoints["dns"], MODEL), what="DNS answers")
        assert len(model_ips) == 3
        apps.patch_namespaced_deployment_scale("coredns", "kube-system", {"spec": {"replicas": 0}})
        try:
            wait_for(lambda: _resolve(endpoints["dns"], MODEL) is None, what="DNS lookups fail")
        finally:
            apps.patch_namespaced_deployment_scale("coredns", "kube-system", {"spec": {"replicas": 2}})
        assert wait_for(lambda: _resolve(endpoints["dns"], MODEL), what="DNS back") == model_ips


def test_down_leaves_no_process_and_is_idempotent(tmp_path: Path, lab_up: tuple[Path, dict[str, Any]]) -> None:
    """down stops every recorded PID and removes the records; a second down is a no-op; status then fails."""
    state, endpoints = lab_up
    pids = list(endpoints["pids"].values())
    assert {f"gpu-agent-{n}" for n in GPU_NODES} <= set(endpoints["pids"])
    job_id = next(iter(endpoints["training"]["hosts"].values())).split("-")[1]
    assert list_namespaces(job_id)
    done = _lab("down", "--state-dir", str(state))
    assert done.returncode == 0 and sorted(json.loads(done.stdout)["stopped"].values()) == sorted(pids)
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=10, what="all processes gone")
    assert not (state / "pids.json").exists() and list_namespaces(job_id) == []
    assert _processes_mentioning(str(state)) == []
    assert json.loads(_lab("down", "--state-dir", str(state)).stdout) == {"stopped": {}}
    assert _lab("status", "--state-dir", str(state)).returncode == 1


def test_running_lab_yields_handle_and_always_stops(tmp_path: Path) -> None:
    """running_lab gives tokens, kubeconfig and a working control API, and leaves no process after the block."""
    from lab.testing import running_lab

    _require(find_binary() is not None, "needs Prometheus: apt-get install -y prometheus")
    with running_lab(tmp_path / "lab", nodes=2, gpu_nodes=0, time_scale=10) as lab:
        pids = list(lab.endpoints["pids"].values())
        assert lab.kubeconfig.exists() and lab.admin_token != lab.runner_token
        assert lab.control("node-0", "pause")["paused"] is True
        assert lab.control("node-0", "resume")["paused"] is False
        with lab.client(lab.runner_token) as api:
            assert len(client.CoreV1Api(api).list_node().items) == 2
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=10, what="all processes gone")
