"""Tests for lab.training.train: the worker checkpoints and resumes (one rank, gloo on loopback)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lab.training.job import REPO_ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(shared: Path, steps: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TORCH", "MASTER_"))}
    env.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(_free_port()),
        RANK="0",
        WORLD_SIZE="1",
        LOCAL_RANK="0",
        GLOO_SOCKET_IFNAME="lo",
        PYTHONPATH=str(REPO_ROOT),
        OMP_NUM_THREADS="1",
    )
    argv = [
        sys.executable,
        "-m",
        "lab.training.train",
        "--shared",
        str(shared),
        "--steps",
        str(steps),
        "--checkpoint-every",
        "5",
        "--timeout",
        "10",
        "--step-sleep",
        "0",
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=80, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.usefixtures("require_torch")
def test_worker_checkpoints_and_resumes_from_latest(tmp_path: Path) -> None:
    """A second run resumes from the step-10 checkpoint written by a first run that stopped at 12."""
    _run(tmp_path, 12)
    _run(tmp_path, 14)
    records = [json.loads(line) for line in (tmp_path / "progress.jsonl").read_text().splitlines()]
    starts = [r["step"] for r in records if r["event"] == "start"]
    checkpoints = [r["step"] for r in records if r["event"] == "checkpoint"]
    steps = [r["step"] for r in records if r["event"] == "step"]
    assert starts == [0, 10]
    assert checkpoints == [5, 10]
    assert steps == list(range(1, 13)) + [11, 12, 13, 14]
