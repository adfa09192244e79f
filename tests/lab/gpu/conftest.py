"""Fixtures for the lab GPU tests: a real API server with GPU nodes and pods and the lab's GPU identities
(lab/control/addons/gpu/agents.yaml), the monitor as a real process."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from lab.control.plane import GPU_ADDON
from lab.gpu.launch import AGENT_USER, MONITOR_USER
from lab.gpu.nodes import REPO_ROOT
from lab.testing import LabHandle, running_api
from tests.conftest import poll as shared_poll

T = TypeVar("T")
GPU_NODES = ["gpu-node-0", "gpu-node-1"]


def wait_for(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.05) -> T:
    """Poll ``check`` until truthy, or fail after ``timeout`` seconds (tests.conftest.poll)."""
    return shared_poll(check, timeout, what, every)


def http(
    url: str,
    method: str = "GET",
    token: str | None = None,
    body: Any = None,
    content_type: str = "application/json",
    ca_file: Path | None = None,
) -> tuple[int, Any]:
    """One HTTP call (HTTPS verified against ``ca_file`` when given); returns (status, decoded JSON or text)."""
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    resp = httpx.request(method, url, content=data, headers=headers, timeout=10,
                         verify=ssl.create_default_context(cafile=ca_file))
    try:
        return resp.status_code, json.loads(resp.content)
    except ValueError:
        return resp.status_code, resp.content.decode(errors="replace")


@dataclass
class Cluster:
    """The API server plus helpers to make and read nodes and pods as admin."""

    api: LabHandle

    def call(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        """An admin call; fails the test on an error status."""
        status, out = http(self.api.url + path, method, self.api.admin_token, body, content_type, self.api.ca_file)
        assert status < 400, f"{method} {path}: {status} {out}"
        return out

    @property
    def agent_token(self) -> str:
        """The GPU node agents' token (gameday/gameday-agent, from TokenRequest), as the lab gives it."""
        return self.api.token_for(AGENT_USER)

    @property
    def monitor_token(self) -> str:
        """The GPU health monitor's token (kube-system/gpu-health-monitor, from TokenRequest), as the lab gives it."""
        return self.api.token_for(MONITOR_USER)

    def node(self, name: str) -> dict[str, Any]:
        """The Node object."""
        result: dict[str, Any] = self.call("GET", f"/api/v1/nodes/{name}")
        return result

    def add_node(self, name: str) -> None:
        """Make the (existing) Node a GPU node: its label, eight GPUs and a Ready condition, as its kubelet would."""
        merge = "application/merge-patch+json"
        self.call("PATCH", f"/api/v1/nodes/{name}", {"metadata": {"labels": {"nvidia.com/gpu.present": "true"}}}, merge)
        self.call(
            "PATCH",
            f"/api/v1/nodes/{name}/status",
            {
                "status": {
                    "capacity": {"nvidia.com/gpu": "8"},
                    "allocatable": {"nvidia.com/gpu": "8"},
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                },
            },
            merge,
        )

    def add_pod(self, name: str, node: str, gpus: int = 0, daemonset: bool = False) -> None:
        """A pod bound to ``node`` (optionally asking for GPUs, optionally owned by a DaemonSet)."""
        meta: dict[str, Any] = {"name": name, "namespace": "default"}
        if daemonset:
            meta["ownerReferences"] = [
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "name": "dcgm",
                    "uid": "ds-uid-1",
                    "controller": True,
                }
            ]
        container: dict[str, Any] = {"name": "main", "image": "lab/train"}
        if gpus:
            container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
        self.call(
            "POST",
            "/api/v1/namespaces/default/pods",
            {"metadata": meta, "spec": {"nodeName": node, "containers": [container]}},
        )

    def pods(self, node: str) -> list[str]:
        """Names of the pods on ``node`` that are not being deleted (with no kubelet to finish it, an evicted pod
        stays Terminating)."""
        out = self.call("GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{node}")
        return sorted(p["metadata"]["name"] for p in out["items"] if not p["metadata"].get("deletionTimestamp"))

    def condition(self, node: str, kind: str) -> dict[str, Any] | None:
        """A node condition by type."""
        for c in (self.node(node).get("status") or {}).get("conditions") or []:
            if c["type"] == kind:
                return dict(c)
        return None


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A fresh real API server with the lab's GPU identities and two GPU nodes, each running two GPU pods, a CPU pod
    and a DaemonSet pod."""
    with running_api(tmp_path / "api", nodes=GPU_NODES) as api:
        applied = api.kubectl("apply", "-f", str(GPU_ADDON), context="lab-admin")
        assert applied.returncode == 0, applied.stderr
        c = Cluster(api)
        # the account pods run as; the controller that makes it in every namespace does not run here
        c.call("POST", "/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": "default"}})
        for node in GPU_NODES:
            c.add_node(node)
            for i in range(2):
                c.add_pod(f"train-{node}-{i}", node, gpus=4)
            c.add_pod(f"web-{node}", node)
            c.add_pod(f"dcgm-{node}", node, daemonset=True)
        yield c


@dataclass
class MonitorProcess:
    """The monitor running as ``python -m lab.gpu.monitor``."""

    proc: subprocess.Popen[bytes]
    metrics_url: str
    kmsg: dict[str, Path]

    def metrics(self) -> str:
        """The current /metrics text."""
        status, text = http(self.metrics_url)
        assert status == 200
        return str(text)

    def value(self, sample: str) -> float:
        """The value of one exact sample line prefix (name{labels}), 0 when absent."""
        for line in self.metrics().splitlines():
            if line.startswith(sample + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def start_monitor(
    tmp_path: Path,
    cluster: Cluster,
    kmsg: dict[str, Path],
    extra: list[str] | None = None,
) -> MonitorProcess:
    """Start the monitor process as the lab's monitor identity and wait for its metrics endpoint."""
    token = tmp_path / "monitor-token"
    token.write_text(cluster.monitor_token)
    ready = tmp_path / "monitor-ready"
    argv = [
        sys.executable,
        "-m",
        "lab.gpu.monitor",
        "--api",
        cluster.api.url,
        "--ca-file",
        str(cluster.api.ca_file),
        "--token-file",
        str(token),
        "--ready-file",
        str(ready),
        "--poll-interval",
        "0.05",
        *(extra or []),
    ]
    for node, path in kmsg.items():
        path.touch()
        argv += ["--kmsg", f"{node}={path}"]
    log = (tmp_path / "monitor.log").open("wb")
    proc = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
    )
    log.close()
    try:
        wait_for(lambda: ready.exists() or proc.poll() is not None, 20, "the monitor to listen")
        assert proc.poll() is None, (tmp_path / "monitor.log").read_text()
    except BaseException:
        stop_process(proc)
        raise
    return MonitorProcess(proc, ready.read_text().strip(), kmsg)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def monitor(tmp_path: Path, cluster: Cluster) -> Iterator[MonitorProcess]:
    """The monitor watching one kernel-log file per GPU node (a reboot takes 6 s)."""
    kmsg = {node: tmp_path / f"{node}.kmsg" for node in GPU_NODES}
    m = start_monitor(tmp_path, cluster, kmsg, extra=["--reboot-seconds", "6"])
    try:
        yield m
    finally:
        stop_process(m.proc)
        assert m.proc.returncode == 0, (tmp_path / "monitor.log").read_text()


def append_xid(path: Path, code: int, pci: str = "0000:18:00", old_driver: bool = False) -> None:
    """Append a driver-format XID line to a kernel-log file, as the agent does."""
    tail = "" if old_driver else ", pid=4242, name=pt_main_thread"
    with path.open("a") as f:
        f.write(f"<3>NVRM: Xid (PCI:{pci}): {code}{tail}, test XID\n")
