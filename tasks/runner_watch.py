"""The guardrail watcher: a thread that evaluates every guardrail at its own period during a stage.

Fails closed: a guardrail out of tolerance OR one that cannot be evaluated (any exception) aborts the
stage at once, by setting ``abort`` (an Event the stage's observe window waits on). It also renews the
leases of agent-held faults while the stage runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from blueprints.probes import Guardrail, Probe


@dataclass(frozen=True)
class ProbeVerdict:
    """The outcome of one probe evaluation: within tolerance or not, the value seen, and why."""

    ok: bool
    value: Any = None
    detail: str = ""


Evaluate = Callable[[Probe], ProbeVerdict]
"""Evaluates a probe; raises (ProbeError or anything) when it cannot be evaluated."""


@dataclass
class AbortReason:
    """Why a stage was aborted: which guardrail, and what it saw."""

    guardrail: str
    reason: str
    evaluable: bool = True
    value: float | str | None = None
    """What the probe measured (a number where it was one), for the record and the verdict."""


@dataclass
class GuardrailWatcher:
    """Evaluates guardrails periodically in a background thread until stopped or breached."""

    guardrails: Sequence[Guardrail]
    evaluate: Evaluate
    on_breach: Callable[[AbortReason], None] = lambda _r: None
    renew: Callable[[], None] | None = None
    renew_every: float = 5.0
    abort: threading.Event = field(default_factory=threading.Event)
    reason: AbortReason | None = None
    evaluations: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> GuardrailWatcher:
        """Start watching (returns self)."""
        if self.guardrails or self.renew is not None:
            self._thread = threading.Thread(target=self._loop, name="gameday-guardrails", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching and wait for the thread to finish its current evaluation."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> GuardrailWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _breach(self, reason: AbortReason) -> None:
        if self.abort.is_set():
            return
        self.reason = reason
        self.abort.set()
        try:
            self.on_breach(reason)
        except Exception:  # noqa: BLE001 - reporting a breach must not stop the abort
            pass

    def check_once(self, g: Guardrail) -> AbortReason | None:
        """Evaluate one guardrail; the abort reason if it is breached or not evaluable."""
        self.evaluations += 1
        try:
            verdict = self.evaluate(g.probe)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt | SystemExit):
                raise
            return AbortReason(g.name, f"could not be evaluated: {type(e).__name__}: {e}", evaluable=False)
        if not verdict.ok:
            value = verdict.value if isinstance(verdict.value, int | float) and not isinstance(verdict.value, bool) \
                else (None if verdict.value is None else str(verdict.value))
            return AbortReason(g.name, verdict.detail or f"value {verdict.value!r} out of tolerance", value=value)
        return None

    def _loop(self) -> None:
        start = time.monotonic()
        due = {i: start for i in range(len(self.guardrails))}
        next_renew = start + self.renew_every
        while not self._stop.is_set() and not self.abort.is_set():
            t = time.monotonic()
            for i, g in enumerate(self.guardrails):
                if due[i] <= t and not self._stop.is_set():
                    reason = self.check_once(g)
                    due[i] = t + max(g.every.total_seconds(), 0.05)
                    if reason is not None:
                        self._breach(reason)
                        return
            if self.renew is not None and time.monotonic() >= next_renew:
                try:
                    self.renew()
                except Exception as e:  # noqa: BLE001 - a failed renewal is a fail-closed abort too
                    self._breach(AbortReason("lease-renewal", f"could not renew agent leases: {e}", False))
                    return
                next_renew = time.monotonic() + self.renew_every
            wake = min([*due.values(), next_renew if self.renew else time.monotonic() + 1.0])
            self._stop.wait(max(0.0, min(wake - time.monotonic(), 1.0)))
