"""The guardrail watcher: a thread that evaluates every guardrail at its own period, from a stage's first injection
to the end of its recovery window, as a graded circuit breaker.

Fails closed: a guardrail out of tolerance, one that cannot be evaluated (any exception) and one whose probe does not
answer within its timeout (plus ``PROBE_GRACE_S``) are all breaches. What a breach does is the guardrail's
``severity``: ``warn`` is reported once per episode; ``pause`` is reported and holds the stage's further injections
(``paused``) until it clears, and trips the breaker once it has not cleared within ``pause_timeout``; ``abort`` and
``halt`` trip it at once (``abort`` is set; ``halted`` for halt). The watcher is itself watched: a loop that fails,
or does not come round within ``stall_limit`` seconds, trips the breaker too. It also renews the leases of agent-held
faults while the stage runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from blueprints.probes import Guardrail, Probe

PROBE_GRACE_S = 2.0
"""Seconds a probe may take beyond its own timeout before it counts as hung (a breach)."""


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
    """A guardrail breach: which guardrail, what it saw, and what the breach does (its severity)."""

    guardrail: str
    reason: str
    evaluable: bool = True
    value: float | str | None = None
    """What the probe measured (a number where it was one), for the record and the verdict."""
    severity: str = "abort"


def evaluate_within(evaluate: Evaluate, probe: Probe, limit: float) -> ProbeVerdict | None:
    """``evaluate(probe)`` on a thread of its own; None when it did not answer within ``limit`` seconds (the thread
    is abandoned), its exception re-raised otherwise."""
    verdicts: list[ProbeVerdict] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def call() -> None:
        try:
            verdicts.append(evaluate(probe))
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            errors.append(e)
        finally:
            done.set()

    threading.Thread(target=call, name=f"probe {probe.name}", daemon=True).start()
    if not done.wait(limit):
        return None
    if errors:
        raise errors[0]
    return verdicts[0]


@dataclass
class GuardrailWatcher:
    """Evaluates guardrails periodically in a background thread until stopped or tripped."""

    guardrails: Sequence[Guardrail]
    evaluate: Evaluate
    on_breach: Callable[[AbortReason], None] = lambda _r: None
    """Told of every breach: once per episode of a warn or pause guardrail, and the one that trips the breaker."""
    renew: Callable[[], None] | None = None
    renew_every: float = 5.0
    on_clear: Callable[[str], None] = lambda _name: None
    """Told when a warn or pause guardrail is back within tolerance."""
    abort: threading.Event = field(default_factory=threading.Event)
    reason: AbortReason | None = None
    """The breach that tripped the breaker (abort, halt, a pause that did not clear, a failed watcher)."""
    halted: bool = False
    evaluations: int = 0
    beat: float = field(default_factory=time.monotonic)
    """When the loop last came round (monotonic seconds)."""
    _open: dict[str, float] = field(default_factory=dict)
    """Warn and pause guardrails in breach now, with when their episode began."""
    _judging: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def paused(self) -> bool:
        """Whether a pause guardrail is in breach now (no further injections)."""
        return any(g.severity == "pause" and g.name in self._open for g in self.guardrails)

    @property
    def stall_limit(self) -> float:
        """Seconds the loop may take to come round before the watcher counts as stalled."""
        turn = sum(g.probe.timeout.total_seconds() + PROBE_GRACE_S for g in self.guardrails)
        return turn + max((g.every.total_seconds() for g in self.guardrails), default=1.0) + 5.0

    def start(self) -> GuardrailWatcher:
        """Start watching, and watching the watcher (returns self)."""
        if self.guardrails or self.renew is not None:
            self.beat = time.monotonic()
            for target, name in ((self._loop, "gameday-guardrails"), (self._watchdog, "gameday-guardrails-watchdog")):
                t = threading.Thread(target=target, name=name, daemon=True)
                t.start()
                self._threads.append(t)
        return self

    def stop(self) -> None:
        """Stop watching and wait for the thread to finish its current evaluation."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def __enter__(self) -> GuardrailWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _tell(self, reason: AbortReason) -> None:
        try:
            self.on_breach(reason)
        except Exception:  # noqa: BLE001 - reporting a breach must not stop the breaker
            pass

    def _trip(self, reason: AbortReason) -> None:
        if self.abort.is_set():
            return
        self.reason = reason
        self.halted = reason.severity == "halt"
        self.abort.set()
        self._tell(reason)

    def check_once(self, g: Guardrail) -> AbortReason | None:
        """Evaluate one guardrail within its probe's timeout; the breach (with the guardrail's severity) if it is out
        of tolerance, not evaluable or hung."""
        self.evaluations += 1
        limit = g.probe.timeout.total_seconds() + PROBE_GRACE_S
        try:
            verdict = evaluate_within(self.evaluate, g.probe, limit)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt | SystemExit):
                raise
            return AbortReason(g.name, f"could not be evaluated: {type(e).__name__}: {e}", evaluable=False,
                               severity=g.severity)
        if verdict is None:
            return AbortReason(g.name, f"did not answer within {limit:g} s (a hung probe counts as breached)",
                               evaluable=False, severity=g.severity)
        if not verdict.ok:
            value = verdict.value if isinstance(verdict.value, int | float) and not isinstance(verdict.value, bool) \
                else (None if verdict.value is None else str(verdict.value))
            return AbortReason(g.name, verdict.detail or f"value {verdict.value!r} out of tolerance", value=value,
                               severity=g.severity)
        return None

    def look_now(self) -> None:
        """Evaluate every guardrail once, now, in the calling thread (before an injection: a pause must hold it even
        if the watcher has not looked since the last one)."""
        for g in self.guardrails:
            if self.abort.is_set():
                return
            self._judge(g, self.check_once(g), time.monotonic())

    def _judge(self, g: Guardrail, reason: AbortReason | None, t: float) -> bool:
        """Act on one evaluation; True when the breaker tripped."""
        with self._judging:
            return self._judge_locked(g, reason, t)

    def _judge_locked(self, g: Guardrail, reason: AbortReason | None, t: float) -> bool:
        if reason is None:
            if self._open.pop(g.name, None) is not None:
                self.on_clear(g.name)
            return False
        if g.severity in ("abort", "halt"):
            self._trip(reason)
            return True
        began = self._open.setdefault(g.name, t)
        if began == t:
            self._tell(reason)
        elif g.severity == "pause" and t - began >= g.pause_timeout.total_seconds():
            self._trip(AbortReason(g.name, f"held the stage {t - began:.0f} s without clearing ({reason.reason})",
                                   reason.evaluable, reason.value, "abort"))
            return True
        return False

    def _loop(self) -> None:
        try:
            self._turns()
        except BaseException as e:  # noqa: BLE001 - a watcher that fails trips the breaker (fail closed)
            self._trip(AbortReason("guardrail-watcher", f"the guardrail watcher failed: {type(e).__name__}: {e}",
                                   evaluable=False))

    def _turns(self) -> None:
        start = time.monotonic()
        due = {i: start for i in range(len(self.guardrails))}
        next_renew = start + self.renew_every
        while not self._stop.is_set() and not self.abort.is_set():
            t = self.beat = time.monotonic()
            for i, g in enumerate(self.guardrails):
                if due[i] <= t and not self._stop.is_set():
                    reason = self.check_once(g)
                    due[i] = t + max(g.every.total_seconds(), 0.05)
                    if self._judge(g, reason, time.monotonic()):
                        return
            if self.renew is not None and time.monotonic() >= next_renew:
                try:
                    self.renew()
                except Exception as e:  # noqa: BLE001 - a failed renewal is a fail-closed abort too
                    self._trip(AbortReason("lease-renewal", f"could not renew agent leases: {e}", False))
                    return
                next_renew = time.monotonic() + self.renew_every
            wake = min([*due.values(), next_renew if self.renew else time.monotonic() + 1.0])
            self._stop.wait(max(0.0, min(wake - time.monotonic(), 1.0)))

    def _watchdog(self) -> None:
        while not self._stop.wait(1.0) and not self.abort.is_set():
            stalled = time.monotonic() - self.beat
            if stalled > self.stall_limit:
                self._trip(AbortReason("guardrail-watcher", f"the guardrail watcher has not come round for "
                                       f"{stalled:.0f} s", evaluable=False))
