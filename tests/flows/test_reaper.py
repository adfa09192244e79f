"""The orphan reaper: a SIGKILLed runner's children and grandchildren are stopped, and a recycled PID is never hit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from flows.reaper import _created, _signal, descendants
from tests.conftest import poll

ROOT = Path(__file__).resolve().parents[2]
SLEEP = [sys.executable, "-c", "import time; time.sleep(600)"]
PARENT = (
    "import subprocess, sys, time\n"
    "inner = 'import subprocess, sys, time; subprocess.Popen([sys.executable, \"-c\", \"import time; "
    "time.sleep(600)\"]); time.sleep(600)'\n"
    "subprocess.Popen([sys.executable, '-c', inner])\n"
    "time.sleep(600)\n"
)


def test_a_sigkilled_runners_descendants_are_stopped(tmp_path: Path) -> None:
    """A runner with a child and a grandchild is SIGKILLed: the reaper, having noted both, stops them within
    seconds and exits."""
    runner = subprocess.Popen([sys.executable, "-c", PARENT])
    status = tmp_path / "noted.json"
    reaper = None
    try:
        poll(lambda: len(descendants(runner.pid, -1)) == 2, 30, "the runner's child and grandchild")
        family = descendants(runner.pid, -1)
        started = _created(runner.pid)
        assert started is not None
        reaper = subprocess.Popen([sys.executable, "-m", "flows.reaper", "--parent", str(runner.pid), "--started",
                                   repr(started), "--interval", "0.2", "--grace", "2", "--status", str(status)],
                                  cwd=ROOT)
        poll(lambda: status.exists() and set(json.loads(status.read_text() or "[]")) == set(family), 30,
             "the reaper to note both")
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=10)
        poll(lambda: all(_created(pid) is None for pid in family), 15, "the orphans to be stopped")
        assert reaper.wait(timeout=15) == 0
    finally:
        for pid in descendants(runner.pid, -1):
            os.kill(pid, signal.SIGKILL)
        runner.kill()
        if reaper is not None and reaper.poll() is None:
            reaper.kill()


def test_a_pid_whose_start_time_differs_is_not_signalled() -> None:
    """A live process noted with another creation time (its PID recycled) is left alone."""
    proc = subprocess.Popen(SLEEP)
    try:
        created = _created(proc.pid)
        assert created is not None
        _signal({proc.pid: created + 1}, signal.SIGKILL)
        _signal({proc.pid: created}, signal.SIGTERM)
        assert proc.wait(timeout=5) == -signal.SIGTERM, "it died of the SIGKILL meant for another process"
    finally:
        proc.kill()
