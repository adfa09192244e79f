"""The component supervisor: restarts with back-off, the kernel's OOM kill in a real memory cgroup, clean stop."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab.control.supervisor import CGROUP_ROOT
from tests.conftest import poll, require

ALLOCATE = "import time; hog = bytearray(400 * 2**20); hog[::4096] = b'x' * len(hog[::4096]); time.sleep(60)"
"""A child that touches 400 MiB, far past a 64 MiB limit."""


def _cgroup_writable() -> bool:
    probe = CGROUP_ROOT / f"gameday-test-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
        return True
    except OSError:
        return False


@pytest.fixture
def cgroups() -> None:
    """The OOM tests need a writable cgroup v1 memory hierarchy (root on this machine)."""
    require(_cgroup_writable(), f"needs a writable cgroup v1 memory hierarchy at {CGROUP_ROOT}")


def _status(path: Path) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return result


@pytest.fixture
def supervise(tmp_path: Path) -> Iterator[Any]:
    """Start a supervisor on a command; every one started is stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(command: list[str], *options: str) -> tuple[subprocess.Popen[bytes], Path]:
        status = tmp_path / f"s{len(started)}.json"
        proc = subprocess.Popen([sys.executable, "-m", "lab.control.supervisor", "--name", "demo",
                                 "--status-file", str(status), *options, "--", *command],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        started.append(proc)
        return proc, status

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_crashing_child_is_restarted_with_doubling_backoff(supervise: Any) -> None:
    """A child that exits 3 at once is restarted again and again, each delay twice the last up to the cap, and
    every exit is recorded with its code."""
    proc, status = supervise(["sh", "-c", "exit 3"], "--backoff", "0.2", "--backoff-max", "0.8")
    done = poll(lambda: (s := _status(status)) and s["restarts"] >= 4 and s, 30, "four restarts")
    history = done["history"]
    assert {h["reason"] for h in history} == {"exit code 3"}
    starts = [h["at"] for h in history]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4 and all(g >= 0.8 for g in gaps[2:])
    assert proc.poll() is None  # the supervisor itself keeps going


def test_sigterm_stops_the_child_and_the_supervisor(supervise: Any) -> None:
    """SIGTERM to the supervisor's group ends the child and the supervisor with code 0, with no restart."""
    proc, status = supervise([sys.executable, "-c", "import time; time.sleep(600)"])
    child = poll(lambda: (s := _status(status)) and s["pid"], 30, "the child started")
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(30) == 0
    assert not Path(f"/proc/{child}").exists()
    assert _status(status)["restarts"] == 0  # type: ignore[index]


def test_the_kernel_oom_kills_a_child_over_its_limit(supervise: Any, cgroups: None) -> None:
    """A child allocating past its 64 MiB cgroup limit is killed by the kernel, recorded as OOMKilled, counted
    in the metrics, and restarted; on stop the cgroup is removed."""
    proc, status = supervise([sys.executable, "-c", ALLOCATE], "--memory-limit-mib", "64", "--backoff", "0.2")
    first = poll(lambda: _status(status), 30, "the supervisor's status")
    cgroup = Path(first["cgroup"])
    assert int((cgroup / "memory.limit_in_bytes").read_text()) == 64 * 2**20
    done = poll(lambda: (s := _status(status)) and s["oom_kills"] >= 1 and s, 60, "an OOM kill")
    assert done["history"][0]["reason"] == "OOMKilled"
    metrics = httpx.get(done["metrics"], timeout=5).text
    assert 'lab_component_oom_kills_total{component="demo"} 1.0' in metrics or \
        'lab_component_oom_kills_total{component="demo"} 2.0' in metrics
    assert 'lab_component_memory_limit_bytes{component="demo"} 6.7108864e+07' in metrics
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(30) == 0
    assert not cgroup.exists()


def test_an_unusable_cgroup_root_is_a_clear_error(supervise: Any, tmp_path: Path) -> None:
    """A cgroup root that does not exist ends the supervisor with exit 2 and one sentence, no traceback."""
    proc, _ = supervise(["true"], "--memory-limit-mib", "64", "--cgroup-root", str(tmp_path / "no-such-root"))
    assert proc.wait(30) == 2
    err = proc.stderr.read().decode()
    assert "cannot create the memory cgroup" in err and "Traceback" not in err
