"""Tests for lab.gpu.stack (``python -m lab.gpu``): agents, exporter and monitor in one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.gpu.nodes import ENDPOINT_ANNOTATION, REPO_ROOT
from lab.training.netns import list_namespaces
from tests.lab.gpu.conftest import GPU_NODES, Cluster, append_xid, http, stop_process, wait_for


@dataclass
class Stack:
    """The running ``python -m lab.gpu`` process and what its ready file says."""

    proc: subprocess.Popen[bytes]
    info: dict[str, Any]
    state: Path


def _start(tmp_path: Path, cluster: Cluster, extra: list[str]) -> Stack:
    token, monitor_token = tmp_path / "token", tmp_path / "monitor-token"
    token.write_text(cluster.agent_token)
    monitor_token.write_text(cluster.monitor_token)
    ready, state = tmp_path / "gpu-ready.json", tmp_path / "state"
    argv = [sys.executable, "-m", "lab.gpu", "--state-dir", str(state), "--api", cluster.api.url,
            "--ca-file", str(cluster.api.ca_file), "--token-file", str(token),
            "--monitor-token-file", str(monitor_token), "--ready-file", str(ready), "--reboot-seconds", "6",
            *extra]  # fmt: skip
    for node in GPU_NODES:
        argv += ["--node", node]
    with (tmp_path / "stack.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                                env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))  # fmt: skip
    try:
        wait_for(lambda: ready.exists() or proc.poll() is not None, 60, "the stack to be ready")
        assert proc.poll() is None, (tmp_path / "stack.log").read_text()[-3000:]
    except BaseException:
        stop_process(proc)
        raise
    return Stack(proc, json.loads(ready.read_text()), state)


@pytest.fixture
def stack(tmp_path: Path, cluster: Cluster) -> Iterator[Stack]:
    """The GPU stack without the training job."""
    s = _start(tmp_path, cluster, [])
    try:
        yield s
    finally:
        stop_process(s.proc)


def test_stack_monitor_and_exporter_see_an_xid(cluster: Cluster, stack: Stack) -> None:
    """An XID 94 on gpu-node-0's GPU 0 restarts its GPU pods and shows in the exporter; SIGTERM cleans up."""
    assert set(stack.info["agents"]) == set(GPU_NODES)
    assert (
        cluster.node(GPU_NODES[0])["metadata"]["annotations"][ENDPOINT_ANNOTATION]
        == stack.info["agents"][GPU_NODES[0]]
    )
    append_xid(stack.state / "gpu" / GPU_NODES[0] / "kmsg", 94, pci="0000:18:00")
    wait_for(lambda: len(cluster.pods(GPU_NODES[0])) == 2, 15, "the GPU pods to be restarted")

    def xid_shown() -> bool:
        text = str(http(stack.info["exporter"])[1])
        return any(ln.startswith("DCGM_FI_DEV_XID_ERRORS{") and f'Hostname="{GPU_NODES[0]}"' in ln
                   and 'gpu="0"' in ln and ln.endswith(" 94.0") for ln in text.splitlines())  # fmt: skip

    wait_for(xid_shown, 10, "XID 94 in the exporter")
    assert "gpu_monitor_xid_detected_total" in str(http(stack.info["monitor"])[1])
    os.kill(stack.proc.pid, signal.SIGTERM)
    assert stack.proc.wait(timeout=30) == 0
    annotations = cluster.node(GPU_NODES[0])["metadata"].get("annotations") or {}
    assert ENDPOINT_ANNOTATION not in annotations


@pytest.mark.root
@pytest.mark.usefixtures("require_root")
def test_stack_with_training_partitions_inside_the_rank_namespace(tmp_path: Path, cluster: Cluster) -> None:
    """With --training, gpu-node-1's agent puts an nccl-partition into rank 1's namespace; exit removes them."""
    s = _start(tmp_path, cluster, ["--training"])
    try:
        training = s.info["training"]
        ns = training["hosts"][GPU_NODES[1]]
        job_id = ns.split("-")[1]
        assert ns.endswith("-1") and len(list_namespaces(job_id)) == 3
        rank0 = training["ranks"][training["hosts"][GPU_NODES[0]]]
        body = {"fault_id": "rail", "run_id": "stack-test", "ttl_seconds": 30,
                "params": {"kind": "nccl-partition", "action": "DROP", "peers": [f"{rank0}/32"]}}  # fmt: skip
        status, out = http(
            s.info["agents"][GPU_NODES[1]] + "/v1/faults", "POST", cluster.api.agent_token, body
        )
        assert status in (200, 201), out
        rules = subprocess.run(["ip", "netns", "exec", ns, "iptables", "-S"], capture_output=True, text=True,
                               check=True, timeout=10).stdout  # fmt: skip
        assert f"-s {rank0}/32" in rules and "-j DROP" in rules
        os.kill(s.proc.pid, signal.SIGTERM)
        assert s.proc.wait(timeout=60) == 0
        assert list_namespaces(job_id) == []
    finally:
        stop_process(s.proc)
