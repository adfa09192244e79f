"""Starting and stopping client-storm processes, including from a fresh process (reconcile).

Each storm runs as ``python -m tasks.faults.storm --tag <tag>``; the tag (run and fault id) is in the
ledger, so :func:`stop_storm` finds the process by its command line (psutil) naming the module and the tag:
no pidfile to go stale, no risk of killing a recycled PID.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tasks.faults.storm import StormConfig, StormStats

MODULE = "tasks.faults.storm"


def start_storm(cfg: StormConfig, tag: str) -> subprocess.Popen[bytes]:
    """Start a storm process (config, token included, through stdin); it stops by itself if this process dies."""
    proc = subprocess.Popen(
        [sys.executable, "-m", MODULE, "--tag", tag],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    assert proc.stdin is not None
    proc.stdin.write((cfg.model_copy(update={"parent_pid": os.getpid()}).model_dump_json() + "\n").encode())
    proc.stdin.close()
    return proc


def find_storms(tag: str) -> list[int]:
    """PIDs of live storm processes carrying ``tag``."""
    found: list[int] = []
    for proc in psutil.process_iter(["cmdline"]):
        args = proc.info["cmdline"] or []  # None for a process that is not ours to read
        if MODULE in args and "--tag" in args:
            i = args.index("--tag")
            if i + 1 < len(args) and args[i + 1] == tag:
                found.append(proc.pid)
    return found


def _alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def stop_storm(tag: str, proc: subprocess.Popen[bytes] | None = None, grace_s: float = 5.0) -> list[int]:
    """SIGTERM every storm with ``tag`` (SIGKILL after ``grace_s``); returns the PIDs stopped."""
    pids = set(find_storms(tag))
    if proc is not None and proc.poll() is None:
        pids.add(proc.pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()
        if not any(_alive(p) for p in pids):
            break
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if proc is not None:
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    return sorted(pids)


def read_stats(path: str | Path) -> StormStats | None:
    """The storm's last written stats, or None if none yet."""
    try:
        data: StormStats = json.loads(Path(path).read_text())
        return data
    except (OSError, ValueError):
        return None
