"""Starting the GPU side as one of ``lab up``'s background components (``python -m lab.gpu``).

``spawn_stack`` launches the stack in its own session with the lab's identities (the agents run as
``system:serviceaccount:gameday:gameday-agent``, the monitor as
``system:serviceaccount:kube-system:gpu-health-monitor``); ``wait_stack`` returns its ready info
(exporter, monitor, agents, agent_pids, training). ``scrape_jobs`` names the Prometheus jobs for it and
``MANIFEST`` is the GPU workload applied once the stack is up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from lab.errors import LabError, LabStartError
from lab.procs import log_tail, spawn, stop_pid, wait_ready_file

AGENT_USER = "system:serviceaccount:gameday:gameday-agent"
MONITOR_USER = "system:serviceaccount:kube-system:gpu-health-monitor"
MANIFEST = Path(__file__).resolve().parent / "manifests" / "gpu-training.yaml"
LOG = "gpu.log"


class TrainingNeedsRoot(LabError):
    """``--training`` was asked for by a user who cannot create network namespaces."""


def check_training_allowed(training: bool) -> None:
    """Raise TrainingNeedsRoot when the training job is wanted without root."""
    if training and os.geteuid() != 0:
        raise TrainingNeedsRoot(
            "--training needs root: the training job's ranks live in network namespaces "
            "(ip netns add) that the GPU nodes' agents partition; run `sudo python -m lab up ...` or drop --training"
        )


def _token_file(path: Path, token: str) -> Path:
    path.write_text(token)
    path.chmod(0o600)
    return path


def spawn_stack(
    state: Path, api_url: str, runtime_url: str, nodes: list[str], training: bool,
    agent_token: str, monitor_token: str, ca_file: Path | None = None, reboot_seconds: float | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``python -m lab.gpu`` for these GPU nodes; its ready file is ``gpu-ready.json`` (``ca_file``: an HTTPS
    API server's CA)."""
    check_training_allowed(training)
    ready = state / "gpu-ready.json"
    ready.unlink(missing_ok=True)
    cmd = [
        sys.executable, "-m", "lab.gpu", "--state-dir", str(state), "--api", api_url,
        "--token-file", str(_token_file(state / "gpu-agent-token", agent_token)),
        "--monitor-token-file", str(_token_file(state / "gpu-monitor-token", monitor_token)),
        "--runtime-url", runtime_url, "--ready-file", str(ready),
    ]
    for node in nodes:
        cmd += ["--node", node]
    if training:
        cmd.append("--training")
    if ca_file is not None:
        cmd += ["--ca-file", str(ca_file)]
    if reboot_seconds is not None:
        cmd += ["--reboot-seconds", str(reboot_seconds)]
    return spawn(cmd, state / LOG)


def wait_stack(state: Path, proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """The stack's ready info; LabStartError (with its log) when it dies or is late."""
    try:
        return wait_ready_file(state / "gpu-ready.json", proc, timeout, "GPU stack (python -m lab.gpu)")
    except LabStartError as err:
        stop_pid(proc.pid)
        raise LabStartError(f"{err}\n{log_tail(state / LOG, 40)}") from err


def scrape_jobs(info: dict[str, Any]) -> dict[str, str]:
    """Prometheus job name -> metrics URL for the stack's endpoints."""
    jobs = {"gpu-exporter": str(info["exporter"]), "gpu-monitor": str(info["monitor"])}
    metrics = (info.get("training") or {}).get("metrics")
    if metrics:
        jobs["training"] = str(metrics)
    return jobs
