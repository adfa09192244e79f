"""The runner's quiet windows: baseline, recovery, cooldown and final recovery, cut short by a cancel.

A window is waited out in short slices so a cancellation (or a stage's guardrail abort) ends it within
a quarter of a second; every window is recorded with its start and end.
"""

from __future__ import annotations

import threading

from blueprints.record import EventKind
from tasks.runner_record import Recorder, now

_START_EVENTS: dict[str, EventKind] = {
    "baseline": "baseline-start",
    "recovery": "recovery-start",
    "cooldown": "cooldown",
}


def wait(seconds: float, cancel: threading.Event, abort: threading.Event | None = None) -> bool:
    """Wait up to ``seconds``; True when cut short by an abort or cancellation."""
    deadline = now().timestamp() + seconds
    while True:
        left = deadline - now().timestamp()
        if left <= 0:
            return False
        if cancel.is_set() or (abort is not None and abort.is_set()):
            return True
        (abort or cancel).wait(min(left, 0.25))


def quiet_window(
    recorder: Recorder, cancel: threading.Event, kind: str, seconds: float, stage: str | None = None,
    abort: threading.Event | None = None,
) -> None:
    """Wait out a quiet window (baseline, recovery, cooldown, final recovery) and record it; ``abort`` (a stage's
    guardrail breaker) cuts it short too."""
    if seconds <= 0:
        return
    start = now()
    evt = _START_EVENTS.get(kind)
    if evt:
        recorder.event(evt, f"{kind} for {seconds:g}s", stage=stage, seconds=seconds)
    wait(seconds, cancel, abort)
    recorder.window(kind, start, now(), stage)
    if kind == "baseline":
        recorder.event("baseline-end", stage=stage)
