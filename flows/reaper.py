"""The orphan reaper: what a ``gameday run`` process started dies with it, even when it is SIGKILLed.

A killed runner cannot stop its children, and the ones it did not start with a watch of their own (the ephemeral
Prefect server's uvicorn process) would run on for good. ``start_reaper`` spawns ``python -m flows.reaper`` in its
own session; it notes the runner's descendants every ``interval`` seconds (PID and creation time, from psutil) and,
once the runner is gone, sends each one still alive SIGTERM, then SIGKILL after ``grace`` seconds. A PID is only
signalled while its creation time is the one noted, so a recycled PID is never hit. It leaves itself out, and ends
with its runner.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil


def _created(pid: int) -> float | None:
    """When a live process was created (its identity with its PID); None once it is gone or a zombie."""
    try:
        proc = psutil.Process(pid)
        return None if proc.status() == psutil.STATUS_ZOMBIE else proc.create_time()
    except psutil.Error:
        return None


def descendants(root: int, exclude: int) -> dict[int, float]:
    """Every live descendant of ``root`` (PID → creation time), leaving ``exclude`` and its own descendants out."""
    try:
        family = psutil.Process(root).children(recursive=True)
    except psutil.Error:
        return {}
    left_out = {exclude}
    if exclude > 0:
        with contextlib.suppress(psutil.Error):
            left_out.update(p.pid for p in psutil.Process(exclude).children(recursive=True))
    found = {p.pid: _created(p.pid) for p in family if p.pid not in left_out}
    return {pid: created for pid, created in found.items() if created is not None}


def _same(pid: int, created: float) -> bool:
    found = _created(pid)
    return found is not None and abs(found - created) < 0.01


def _signal(pids: dict[int, float], sig: signal.Signals) -> None:
    for pid, created in pids.items():
        if _same(pid, created):
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def watch(parent: int, parent_started: float, interval: float = 1.0, grace: float = 5.0,
          status: Path | None = None) -> list[int]:
    """Note ``parent``'s descendants until it dies, then stop those still alive; the PIDs it signalled. With
    ``status``, the noted PIDs are written there (JSON) after every look."""
    me = os.getpid()
    known: dict[int, float] = {}
    while _same(parent, parent_started):
        known = {pid: s for pid, s in known.items() if _same(pid, s)}
        known.update(descendants(parent, me))
        if status is not None:
            status.write_text(json.dumps(sorted(known)))
        time.sleep(interval)
    left = {pid: s for pid, s in known.items() if _same(pid, s)}
    _signal(left, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_same(pid, s) for pid, s in left.items()):
        time.sleep(0.1)
    _signal(left, signal.SIGKILL)
    return sorted(left)


def start_reaper(interval: float = 1.0, grace: float = 5.0) -> subprocess.Popen[bytes] | None:
    """Spawn the reaper for this process (None where its processes cannot be watched)."""
    me = os.getpid()
    created = _created(me)
    if created is None:
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "flows.reaper", "--parent", str(me), "--started", repr(created),
         "--interval", f"{interval:g}", "--grace", f"{grace:g}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, cwd=str(Path(__file__).resolve().parents[1]),
    )


def main() -> None:
    """``python -m flows.reaper --parent PID --started CREATED`` (the parent's creation time, seconds)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--parent", type=int, required=True)
    ap.add_argument("--started", type=float, required=True)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--grace", type=float, default=5.0)
    ap.add_argument("--status", type=Path, default=None, help="write the noted PIDs here (JSON) after every look")
    args = ap.parse_args()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the runner must not stop its reaper
    watch(args.parent, args.started, args.interval, args.grace, args.status)


if __name__ == "__main__":
    main()
