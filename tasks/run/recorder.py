"""The run recorder: collects timeline events, windows and stage outcomes while a campaign runs.

Plain Python, thread-safe (the guardrail watcher records from its own thread). ``listeners`` are told of
every event as it happens (the CLI's progress display and Prefect's ``emit_event`` hang off them);
a listener that raises is ignored, it must never break a run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from blueprints.record import (
    Approval,
    CampaignRecord,
    EventKind,
    FaultOutcome,
    StageOutcome,
    TargetInfo,
    TimelineEvent,
    Window,
)

Listener = Callable[[TimelineEvent], None]
WindowKind = Any  # Literal of Window.kind; kept loose for callers


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Recorder:
    """Accumulates what happened during a run and turns it into a CampaignRecord."""

    def __init__(self, run_id: str, listeners: list[Listener] | None = None) -> None:
        self.run_id = run_id
        self.started_at = now()
        self.events: list[TimelineEvent] = []
        self.windows: list[Window] = []
        self.stages: list[StageOutcome] = []
        self.setup: list[FaultOutcome] = []
        self.rollback_problems: list[str] = []
        self.listeners: list[Listener] = list(listeners or [])
        self._lock = threading.Lock()

    def event(
        self,
        kind: EventKind,
        message: str = "",
        *,
        stage: str | None = None,
        fault: str | None = None,
        **data: Any,
    ) -> TimelineEvent:
        """Record one timeline event and tell the listeners."""
        ev = TimelineEvent(at=now(), kind=kind, stage=stage, fault=fault, message=message, data=data)
        with self._lock:
            self.events.append(ev)
        for listener in list(self.listeners):
            try:
                listener(ev)
            except Exception:  # noqa: BLE001 - a display/event sink must never break a run
                pass
        return ev

    def window(self, kind: WindowKind, start: datetime, end: datetime, stage: str | None = None) -> Window:
        """Record a finished time window."""
        w = Window(kind=kind, stage=stage, start=start, end=end)
        with self._lock:
            self.windows.append(w)
        return w

    def stage_outcome(self, outcome: StageOutcome) -> None:
        """Record one stage's result."""
        with self._lock:
            self.stages.append(outcome)

    def setup_outcome(self, faults: list[FaultOutcome]) -> None:
        """Record the setup's changes (their rollback fields are filled in when the setup is undone)."""
        with self._lock:
            self.setup = faults

    def rollback_problem(self, problem: str) -> None:
        """Remember a rollback that did not complete (reconcile will retry it)."""
        with self._lock:
            self.rollback_problems.append(problem)

    def build(
        self,
        *,
        campaign: str,
        description: str,
        owner: str,
        status: str,
        target: TargetInfo,
        blueprint: dict[str, Any],
        blueprint_text: str = "",
        dry_run: bool = False,
        started_by: str = "",
        frames_file: str | None = None,
        error: str | None = None,
    ) -> CampaignRecord:
        """The CampaignRecord of everything recorded so far."""
        with self._lock:
            return CampaignRecord(
                run_id=self.run_id,
                campaign=campaign,
                description=description,
                owner=owner,
                started_by=started_by,
                dry_run=dry_run,
                status=status,  # type: ignore[arg-type]
                started_at=self.started_at,
                ended_at=now(),
                target=target,
                blueprint=blueprint,
                blueprint_text=blueprint_text,
                windows=list(self.windows),
                stages=list(self.stages),
                setup=list(self.setup),
                events=list(self.events),
                rollback_problems=list(self.rollback_problems),
                frames_file=frames_file,
                error=error,
            )


def new_fault_outcome(fault_id: str, kind: str, stage: str) -> FaultOutcome:
    """An empty FaultOutcome for a fault about to be planned."""
    return FaultOutcome(id=fault_id, kind=kind, stage=stage)


__all__ = ["Approval", "Listener", "Recorder", "new_fault_outcome", "now"]
