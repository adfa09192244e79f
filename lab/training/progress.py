"""Turning the worker's progress records (``progress.jsonl``) into job statistics and Prometheus metrics.

Lost steps are steps done again after a restart: each step record whose number is not above the highest
step already seen counts as one. Restarts are ``start`` records after the first; ``error`` records are
failed collectives (their times show how fast a partition is noticed: the gloo timeout for DROP, at once
for REJECT; ``training_collective_hang_seconds`` is that delay for the latest failure).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

RATE_WINDOW_S = 5.0


@dataclass
class Progress:
    """What the job has done so far, read from its progress records."""

    steps_total: int = 0
    max_step: int = 0
    current_step: int = 0
    lost_steps: int = 0
    starts: int = 0
    last_checkpoint_step: int = 0
    last_step_time: float = 0.0
    last_hang_s: float = 0.0
    last_restart_lost: int = 0
    errors: list[tuple[float, int, str]] = field(default_factory=list)
    resume_steps: list[int] = field(default_factory=list)
    start_times: list[float] = field(default_factory=list)
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=1000))

    @property
    def restarts(self) -> int:
        """Worker-group (re)starts after the first."""
        return max(0, self.starts - 1)

    def step_rate(self, now: float | None = None) -> float:
        """Steps per second over the last few seconds."""
        now = time.time() if now is None else now
        n = sum(1 for t in self.recent if now - t <= RATE_WINDOW_S)
        return n / RATE_WINDOW_S

    def apply(self, record: dict[str, object]) -> None:
        """Fold one progress record in."""
        event = record.get("event")
        step = int(str(record.get("step", 0)))
        t = float(str(record.get("t", 0.0)))
        if event == "start":
            if self.starts:
                self.last_restart_lost = max(0, self.max_step - step)
            self.starts += 1
            self.resume_steps.append(step)
            self.start_times.append(t)
            self.current_step = step
        elif event == "step":
            self.steps_total += 1
            if step <= self.max_step:
                self.lost_steps += 1
            self.max_step = max(self.max_step, step)
            self.current_step = step
            self.last_step_time = t
            self.recent.append(t)
        elif event == "checkpoint":
            self.last_checkpoint_step = step
        elif event == "error":
            if not self.errors or self.errors[-1][0] < self.last_step_time:
                self.last_hang_s = max(0.0, t - self.last_step_time) if self.last_step_time else 0.0
            self.errors.append((t, int(str(record.get("rank", -1))), str(record.get("error", ""))))


class ProgressReader:
    """Incrementally reads a progress file and keeps Prometheus metrics up to date."""

    def __init__(self, path: Path, registry: CollectorRegistry) -> None:
        self.path = path
        self.progress = Progress()
        self._offset = 0
        self._buf = b""
        self._lock = threading.Lock()
        self._steps = Counter(
            "training_steps", "Training steps completed (redone steps included)", registry=registry
        )
        self._lost = Counter("training_lost_steps", "Steps redone after a restart", registry=registry)
        self._restarts = Counter(
            "training_restarts", "Worker-group restarts (torchrun or relaunch)", registry=registry
        )
        self._failures = Counter(
            "training_collective_failures",
            "Failed collectives (timeouts, resets), any rank",
            registry=registry,
        )
        self._hang = Gauge(
            "training_collective_hang_seconds", "Latest failure: seconds from the last step to the error",
            registry=registry,
        )  # fmt: skip
        self._restart_lost = Gauge(
            "training_last_restart_lost_steps",
            "Steps the latest restart went back (redone)",
            registry=registry,
        )
        self._step = Gauge("training_step", "Current training step", registry=registry)
        self._rate = Gauge("training_step_rate", "Steps per second over the last 5 s", registry=registry)
        self._ckpt = Gauge(
            "training_last_checkpoint_step", "Step of the latest checkpoint", registry=registry
        )
        self._last = Gauge(
            "training_last_step_timestamp_seconds", "Wall time of the latest step", registry=registry
        )
        self._rate.set_function(lambda: self.progress.step_rate())
        self._stall = Gauge("training_stall_seconds", "Seconds since the latest step", registry=registry)
        self._stall.set_function(
            lambda: time.time() - self.progress.last_step_time if self.progress.last_step_time else 0
        )

    def poll(self) -> Progress:
        """Read new records and update metrics; returns the progress so far."""
        with self._lock:
            try:
                with self.path.open("rb") as f:
                    f.seek(self._offset)
                    chunk = f.read()
            except FileNotFoundError:
                return self.progress
            self._offset += len(chunk)
            self._buf += chunk
            *lines, self._buf = self._buf.split(b"\n")
            p = self.progress
            before = (p.steps_total, p.lost_steps, p.restarts, len(p.errors))
            for line in lines:
                if line.strip():
                    self.progress.apply(json.loads(line))
            self._steps.inc(p.steps_total - before[0])
            self._lost.inc(p.lost_steps - before[1])
            self._restarts.inc(p.restarts - before[2])
            self._failures.inc(len(p.errors) - before[3])
            self._step.set(p.current_step)
            self._hang.set(p.last_hang_s)
            self._restart_lost.set(p.last_restart_lost)
            self._ckpt.set(p.last_checkpoint_step)
            self._last.set(p.last_step_time)
            return p
