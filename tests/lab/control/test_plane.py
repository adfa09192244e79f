"""The real control plane's lifecycle: node leases and the node lifecycle controller, Prometheus, clean up and down."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab.build import default_cache_dir, ensure_built
from lab.control import plane
from lab.control.components import ORDER, ControlPlaneOptions
from lab.errors import LabError, LabStartError
from lab.procs import pid_alive
from lab.testing import LabHandle, running_control_plane
from tests.conftest import poll, require

FAST: dict[str, Any] = {"node_lease_seconds": 4, "node_monitor_grace_seconds": 6, "node_monitor_period_seconds": 1,
        "not_ready_toleration_seconds": 20, "unreachable_toleration_seconds": 20}
"""Knobs that make a missed lease visible within seconds: renewal every 1 s, NotReady after 6 s; pods tolerate a
NotReady node 20 s, longer than the nodes' lease expiries can be spread apart under load (with 5 s, the first node
to expire had its pods evicted before the last one expired and the zone counted as fully disrupted)."""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    """A real control plane with three kwok nodes and fast node lifecycle knobs."""
    with running_control_plane(tmp_path_factory.mktemp("real-plane"), nodes=3, **FAST) as handle:
        yield handle


def _get(lab: LabHandle, path: str) -> Any:
    resp = httpx.get(lab.endpoints["apiserver"] + path, headers={"Authorization": f"Bearer {lab.admin_token}"},
                     verify=ssl.create_default_context(cafile=lab.endpoints["ca_file"]), timeout=10)
    resp.raise_for_status()
    return resp.json()


def _ready(lab: LabHandle, node: str) -> str:
    conditions = _get(lab, f"/api/v1/nodes/{node}")["status"]["conditions"]
    return str(next(c["status"] for c in conditions if c["type"] == "Ready"))


def _query(lab: LabHandle, promql: str) -> list[dict[str, Any]]:
    resp = httpx.get(lab.endpoints["prometheus"] + "/api/v1/query", params={"query": promql}, timeout=10)
    resp.raise_for_status()
    result: list[dict[str, Any]] = resp.json()["data"]["result"]
    return result


def test_kwok_renews_leases_as_a_node_identity(lab: LabHandle) -> None:
    """Every kwok node's Lease is renewed about each second, and the API server counts those writes in the
    system-node-high flow (kwok's group system:nodes), as it would a kubelet's."""
    def renewals() -> dict[str, str]:
        leases = _get(lab, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases")["items"]
        return {item["metadata"]["name"]: item["spec"]["renewTime"] for item in leases}

    first = renewals()
    assert set(first) == set(lab.endpoints["kwok_nodes"])
    poll(lambda: all(renewals()[n] > first[n] for n in first), 10, "every lease renewed again")
    rows = poll(lambda: [r for r in _query(
        lab, 'sum by (flow_schema) (increase(apiserver_flowcontrol_dispatched_requests_total'
             '{flow_schema="system-node-high"}[10s]))') if float(r["value"][1]) >= 3], 30,
        "lease writes counted in APF's system-node-high flow")
    assert rows[0]["metric"]["flow_schema"] == "system-node-high"


def test_every_component_is_scraped(lab: LabHandle) -> None:
    """Prometheus has up == 1 for each component (and the API server's supervisor) and their own metrics (etcd's
    leader, APF, the scheduler's attempts, the controller manager's work queues)."""
    up = {r["metric"]["job"]: r["value"][1] for r in _query(lab, "up")}
    assert up == dict.fromkeys(("apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kwok",
                                "kube-apiserver-supervisor", "prometheus"), "1")
    for promql in ("etcd_server_has_leader", "apiserver_flowcontrol_nominal_limit_seats",
                   'workqueue_adds_total{name="deployment"}', "scheduler_pending_pods"):
        assert _query(lab, promql), f"no series for {promql}"


def _unreachable(lab: LabHandle) -> set[str]:
    """The nodes that carry the node lifecycle controller's NoExecute unreachable taint."""
    return {n["metadata"]["name"] for n in _get(lab, "/api/v1/nodes")["items"]
            if any(t["key"] == "node.kubernetes.io/unreachable" and t["effect"] == "NoExecute"
                   for t in n["spec"].get("taints", []))}


def test_frozen_kubelets_make_every_node_not_ready_without_evictions(lab: LabHandle) -> None:
    """With kwok frozen (SIGSTOP) kube-controller-manager marks every node NotReady, judges the zone fully disrupted
    and stops taint-based eviction, so no node it had not tainted before loses a pod even after the pods' toleration
    has run out, and thawed, every node is Ready and untainted and the Deployment whole again."""
    assert lab.kubectl("create", "namespace", "frozen", context="lab-admin").returncode == 0
    created = lab.kubectl("-n", "frozen", "create", "deployment", "app", "--image=nginx", "--replicas=6")
    assert created.returncode == 0, created.stderr
    assert lab.kubectl("-n", "frozen", "rollout", "status", "deployment/app", "--timeout=60s").returncode == 0

    def placed() -> dict[str, str]:
        items = _get(lab, "/api/v1/namespaces/frozen/pods")["items"]
        return {p["metadata"]["name"]: p["spec"].get("nodeName", "") for p in items
                if "deletionTimestamp" not in p["metadata"]}

    def pods_on(nodes: set[str]) -> set[str]:
        return {name for name, node in placed().items() if node in nodes}

    nodes = set(lab.endpoints["kwok_nodes"])
    before = placed()
    assert len(before) == 6 and set(before.values()) <= nodes
    kwok_pid = lab.endpoints["pids"]["kwok"]
    os.kill(kwok_pid, signal.SIGSTOP)
    try:
        poll(lambda: all(_ready(lab, n) == "Unknown" for n in nodes), 30, "every node NotReady (Unknown)")
        poll(lambda: _query(lab, "max(node_collector_zone_health) == 0"), 30,
             "the controller's zone health at 0 % (full disruption)")
        # While the zone is still normal the eviction limiter (burst 1) taints the first node to expire at once;
        # when every node expires in the same monitor pass, the untainting at the switch to full disruption reads the
        # pass's cached node list, which can predate that taint (v1.37 node_lifecycle_controller.go,
        # handleDisruption), and that node's pods are evicted: Kubernetes' behaviour, not the lab's.
        tainted = _unreachable(lab)
        assert len(tainted) <= 1, f"the controller tainted {sorted(tainted)} although the zone is fully disrupted"
        spared = nodes - tainted
        kept = {name for name, node in before.items() if node in spared}
        assert pods_on(spared) == kept, "pods on nodes the controller had not tainted are gone"
        held = time.monotonic() + 1.5 * FAST["unreachable_toleration_seconds"]  # every toleration runs out
        while time.monotonic() < held:
            assert _unreachable(lab) == tainted, "a node was tainted after the zone turned fully disrupted"
            assert pods_on(spared) == kept, "a pod was evicted from a node that was never tainted"
            time.sleep(0.5)
    finally:
        os.kill(kwok_pid, signal.SIGCONT)
    poll(lambda: all(_ready(lab, n) == "True" for n in nodes), 30, "every node Ready again")
    poll(lambda: not _unreachable(lab), 30, "every unreachable taint removed")
    assert kept <= pods_on(spared)  # replacements for the tainted node's evicted pods may land beside them
    poll(lambda: _get(lab, "/apis/apps/v1/namespaces/frozen/deployments/app")["status"].get("availableReplicas") == 6,
         90, "the Deployment's six replicas available again")


def test_up_twice_is_refused(lab: LabHandle) -> None:
    """A second up on a running lab's state dir is refused and leaves the running lab alone."""
    with pytest.raises(LabError, match="already running"):
        plane.up(ControlPlaneOptions(lab.state_dir), {name: Path(sys.executable) for name in plane.BINARIES})
    assert all(pid_alive(pid) for pid in lab.endpoints["pids"].values())


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_down_leaves_nothing_running(tmp_path: Path) -> None:
    """After the lab's block ends every component's process is gone and no port of it still listens."""
    with running_control_plane(tmp_path, nodes=1) as handle:
        pids = dict(handle.endpoints["pids"])
        ports = [int(url.rsplit(":", 1)[1].split("/")[0]) for url in handle.endpoints["metrics"].values()]
        assert set(pids) == {*ORDER, "prometheus"} and all(_listening(p) for p in ports)
    assert not any(pid_alive(pid) for pid in pids.values())
    assert not any(_listening(p) for p in ports)
    assert not (tmp_path / "pids.json").exists() and not (tmp_path / "endpoints.json").exists()


def test_down_sweeps_the_pod_processes_of_a_runtime_that_is_gone(tmp_path: Path) -> None:
    """`down` SIGKILLs a process still running from the lab's pods directory (its runtime died before it could
    stop it) and leaves a process that names another directory alone."""
    pods, other = tmp_path / "pods", tmp_path / "other"
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    left = subprocess.Popen([*sleeper, str(pods / "uid" / "Corefile")])
    kept = subprocess.Popen([*sleeper, str(other / "uid" / "Corefile")])
    try:
        plane.down(tmp_path, grace=1)
        assert left.wait(timeout=10) == -signal.SIGKILL
        assert kept.poll() is None
    finally:
        for proc in (left, kept):
            proc.kill()
            proc.wait()


def test_a_component_that_fails_to_start_stops_the_rest(tmp_path: Path) -> None:
    """A kube-scheduler that exits at start (a fake binary standing in for a broken build) fails up with its own
    log line, and the etcd, API server and controller manager started before it are stopped."""
    binaries = dict(ensure_built(default_cache_dir(os.environ.get("XDG_CACHE_HOME"), Path.home()), plane.BINARIES))
    broken = tmp_path / "fake-kube-scheduler"
    broken.write_text("#!/bin/sh\necho 'unknown flag: --from-a-broken-build' >&2\nexit 3\n")
    broken.chmod(0o755)
    binaries["kube-scheduler"] = broken
    state = tmp_path / "state"
    with pytest.raises(LabStartError, match="kube-scheduler healthy: exited with code 3") as err:
        plane.up(ControlPlaneOptions(state, nodes=1), binaries)
    assert "--from-a-broken-build" in str(err.value)
    assert not (state / "pids.json").exists()
    leftovers = subprocess.run(["pgrep", "-f", str(state)], capture_output=True, text=True, check=False).stdout
    assert leftovers.split() == []


def test_a_killed_api_server_is_restarted_inside_its_memory_cgroup(tmp_path: Path) -> None:
    """The API server runs in a memory cgroup with the knob's limit; SIGKILLed, it is restarted after the back-off
    by its supervisor, serves again, and the restart shows in lab status and in Prometheus."""
    require(Path("/sys/fs/cgroup/memory").is_dir() and os.access("/sys/fs/cgroup/memory", os.W_OK),
            "needs a writable cgroup v1 memory hierarchy")
    with running_control_plane(tmp_path, nodes=1, apiserver_memory_mib=2048, restart_backoff_seconds=1) as lab:
        first = json.loads(Path(lab.endpoints["supervisors"]["kube-apiserver"]).read_text())
        cgroup = Path(first["cgroup"])
        assert int((cgroup / "memory.limit_in_bytes").read_text()) == 2048 * 2**20
        assert str(first["pid"]) in (cgroup / "cgroup.procs").read_text().split()
        os.kill(first["pid"], signal.SIGKILL)
        again = poll(lambda: (s := json.loads(Path(lab.endpoints["supervisors"]["kube-apiserver"]).read_text()))
                     ["restarts"] == 1 and s["pid"] != first["pid"] and s, 30, "the API server restarted")
        assert again["history"][0]["reason"] == "signal 9"
        poll(lambda: lab.kubectl("get", "--raw", "/readyz", context="lab-admin").returncode == 0, 60,
             "the restarted API server ready")
        assert str(again["pid"]) in (cgroup / "cgroup.procs").read_text().split()
        shown = plane.status(lab.state_dir)
        assert shown["components"]["kube-apiserver"]["supervisor"]["restarts"] == 1
        poll(lambda: _query(lab, 'lab_component_restarts_total{component="kube-apiserver"} == 1'), 30,
             "the restart in Prometheus")
        poll(lambda: _ready(lab, "kwok-node-0") == "True", 60, "the node Ready through the restart")
    assert not cgroup.exists()


def test_down_after_the_supervisor_was_killed_stops_the_server_and_its_cgroup(tmp_path: Path) -> None:
    """With the API server's supervisor SIGKILLed (as a killed runner would leave it), down still stops the
    orphaned server through its process group and removes the cgroup the supervisor could not."""
    require(Path("/sys/fs/cgroup/memory").is_dir() and os.access("/sys/fs/cgroup/memory", os.W_OK),
            "needs a writable cgroup v1 memory hierarchy")
    with running_control_plane(tmp_path, nodes=1, apiserver_memory_mib=2048) as lab:
        status = json.loads(Path(lab.endpoints["supervisors"]["kube-apiserver"]).read_text())
        os.kill(lab.endpoints["pids"]["kube-apiserver"], signal.SIGKILL)
        poll(lambda: not pid_alive(lab.endpoints["pids"]["kube-apiserver"]), 10, "the supervisor gone")
        assert pid_alive(status["pid"])  # the server itself runs on, orphaned
    poll(lambda: not pid_alive(status["pid"]), 30, "the orphaned API server stopped by down")
    assert not Path(status["cgroup"]).exists()


def test_cli_refuses_knobs_that_cannot_work_before_starting_anything(tmp_path: Path) -> None:
    """`lab up --gpu-nodes 0 --training` with a bad reboot time exits 2 naming both and starts nothing."""
    done = subprocess.run([sys.executable, "-m", "lab", "up", "--gpu-nodes", "0", "--training",
                           "--gpu-reboot", "0", "--state-dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=60, check=False, env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 2, done.stderr
    assert "training: " in done.stderr and "gpu_reboot_seconds: " in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "pids.json").exists()


def test_cli_refuses_the_retired_emulated_plane(tmp_path: Path) -> None:
    """`lab up --control-plane emulated` exits 2 saying the lab runs the real control plane only, starting nothing."""
    done = subprocess.run([sys.executable, "-m", "lab", "up", "--control-plane", "emulated", "--state-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"})
    assert done.returncode == 2, done.stderr
    assert "real control plane only" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "pids.json").exists()


def test_cli_api_only_runs_etcd_and_the_real_api_server_alone(tmp_path: Path) -> None:
    """`lab up --api-only` starts etcd and kube-apiserver v1.37.2 and nothing else; `lab down` stops both."""
    state = tmp_path / "lab"
    try:
        up = subprocess.run([sys.executable, "-m", "lab", "up", "--api-only", "--state-dir", str(state)],
                            capture_output=True, text=True, timeout=180, check=False)
        assert up.returncode == 0, up.stderr
        endpoints = json.loads(up.stdout)
        assert set(endpoints["pids"]) == {"etcd", "kube-apiserver"} and endpoints["prometheus"] is None
        version = subprocess.run([endpoints["kubectl"], "--kubeconfig", str(state / "kubeconfig"), "version",
                                  "-o", "json"], capture_output=True, text=True, timeout=60, check=True)
        assert json.loads(version.stdout)["serverVersion"]["gitVersion"] == "v1.37.2"
        nodes = subprocess.run([endpoints["kubectl"], "--kubeconfig", str(state / "kubeconfig"), "--context",
                                "lab-admin", "get", "nodes", "-o", "name"], capture_output=True, text=True,
                               timeout=60, check=True)
        assert nodes.stdout.strip() == ""
    finally:
        stopped = json.loads(subprocess.run([sys.executable, "-m", "lab", "down", "--state-dir", str(state)],
                                            capture_output=True, text=True, timeout=120, check=True).stdout)
    assert set(stopped["stopped"]) == {"etcd", "kube-apiserver"}
    assert not any(pid_alive(pid) for pid in stopped["stopped"].values())


def test_cli_status_and_down_follow_the_real_plane(tmp_path: Path) -> None:
    """`lab status` reports the real components and node counts; `lab down` stops them and says which."""
    with running_control_plane(tmp_path, nodes=2) as handle:
        shown = json.loads(subprocess.run([sys.executable, "-m", "lab", "status", "--state-dir", str(tmp_path)],
                                          capture_output=True, text=True, timeout=60, check=True).stdout)
        assert shown["control_plane"] == "real" and shown["nodes"] == {"total": 2, "ready": 2}
        assert set(shown["components"]) == {*ORDER, "prometheus"}
        stopped = json.loads(subprocess.run([sys.executable, "-m", "lab", "down", "--state-dir", str(tmp_path)],
                                            capture_output=True, text=True, timeout=120, check=True).stdout)
        assert stopped["stopped"] == handle.endpoints["pids"]
        assert not any(pid_alive(pid) for pid in handle.endpoints["pids"].values())
