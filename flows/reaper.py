"""The orphan reaper: what a ``gameday run`` process started dies with it, even when it is SIGKILLed.

A killed runner cannot stop its children, and the ones it did not start with a watch of their own (the ephemeral
Prefect server's uvicorn process) would run on for good. ``start_reaper`` spawns ``python -m flows.reaper`` in its
own session; it notes the runner's descendants every ``interval`` seconds (PID and start time, from ``/proc``) and,
once the runner is gone, sends each one still alive SIGTERM, then SIGKILL after ``grace`` seconds. A PID is only
signalled while its start time is the one noted, so a recycled PID is never hit. It leaves itself out, and ends
with its runner.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PROC = Path("/proc")


def stat(pid: int) -> tuple[int, int] | None:
    """(parent PID, start time in clock ticks) of a live process; None once it is gone (or a zombie)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[19])


def descendants(root: int, exclude: int) -> dict[int, int]:
    """Every live descendant of ``root`` (PID → start time), leaving ``exclude`` and its own descendants out."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (info := stat(int(entry.name))) is not None:
            children.setdefault(info[0], []).append((int(entry.name), info[1]))
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for pid, started in children.get(todo.pop(), []):
            if pid != exclude and pid not in found:
                found[pid] = started
                todo.append(pid)
    return found


def _same(pid: int, started: int) -> bool:
    info = stat(pid)
    return info is not None and info[1] == started


def _signal(pids: dict[int, int], sig: signal.Signals) -> None:
    for pid, started in pids.items():
        if _same(pid, started):
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def watch(parent: int, parent_started: int, interval: float = 1.0, grace: float = 5.0,
          status: Path | None = None) -> list[int]:
    """Note ``parent``'s descendants until it dies, then stop those still alive; the PIDs it signalled. With
    ``status``, the noted PIDs are written there (JSON) after every look."""
    me = os.getpid()
    known: dict[int, int] = {}
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
    """Spawn the reaper for this process (None where there is no ``/proc`` to watch it through)."""
    me = os.getpid()
    info = stat(me)
    if info is None:
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "flows.reaper", "--parent", str(me), "--started", str(info[1]),
         "--interval", f"{interval:g}", "--grace", f"{grace:g}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, cwd=str(Path(__file__).resolve().parents[1]),
    )


def main() -> None:
    """``python -m flows.reaper --parent PID --started TICKS``."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--parent", type=int, required=True)
    ap.add_argument("--started", type=int, required=True)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--grace", type=float, default=5.0)
    ap.add_argument("--status", type=Path, default=None, help="write the noted PIDs here (JSON) after every look")
    args = ap.parse_args()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the runner must not stop its reaper
    watch(args.parent, args.started, args.interval, args.grace, args.status)


if __name__ == "__main__":
    main()
