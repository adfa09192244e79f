"""Tests for lab.gpu.launch: the GPU side as a `lab up` component (root check, scrape jobs, a failed start).

The GPU side on a running real plane (agents, monitor, trainer, the XID 79 reboot cycle) is
tests/lab/control/test_gpu_nodes.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.control import plane
from lab.control.components import ControlPlaneOptions
from lab.errors import LabError, LabStartError
from lab.gpu import launch
from lab.procs import pid_alive


def test_training_without_root_is_a_clear_error_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As a non-root user, `lab up` with GPU nodes and the training job fails at once, saying root is needed, and
    writes nothing; the stack itself refuses the training job without starting a process."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="need root"):
        plane.up(ControlPlaneOptions(tmp_path / "lab", nodes=0, gpu_nodes=1, training=True), {})
    assert not (tmp_path / "lab").exists()
    with pytest.raises(launch.TrainingNeedsRoot, match="needs root"):
        launch.spawn_stack(tmp_path, "https://127.0.0.1:9", "http://127.0.0.1:9", ["gpu-node-0"], True,
                           "agent-token", "monitor-token")
    assert not (tmp_path / launch.LOG).exists() and not (tmp_path / "gpu-agent-token").exists()


def test_scrape_jobs_name_the_exporter_monitor_and_training_metrics() -> None:
    """The stack's ready info becomes the gpu-exporter, gpu-monitor and (when present) training jobs."""
    info = {"exporter": "http://127.0.0.1:1/metrics", "monitor": "http://127.0.0.1:2/metrics", "training": {}}
    assert launch.scrape_jobs(info) == {"gpu-exporter": info["exporter"], "gpu-monitor": info["monitor"]}
    info["training"] = {"metrics": "http://127.0.0.1:3/metrics"}
    assert launch.scrape_jobs(info)["training"] == "http://127.0.0.1:3/metrics"


def test_a_stack_that_dies_at_start_fails_with_its_log_and_leaves_no_process(tmp_path: Path) -> None:
    """When the stack exits before its ready file (here: the API server is unreachable), wait_stack raises
    LabStartError with the stack's log tail and the process is gone."""
    proc = launch.spawn_stack(tmp_path, "https://127.0.0.1:9", "http://127.0.0.1:9", ["gpu-node-0"], False,
                              "agent-token", "monitor-token")
    try:
        with pytest.raises(LabStartError, match="GPU stack") as err:
            launch.wait_stack(tmp_path, proc, 60)
        assert "cannot annotate node gpu-node-0" in str(err.value)
        assert not pid_alive(proc.pid)
        assert (tmp_path / "gpu-agent-token").stat().st_mode & 0o077 == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
