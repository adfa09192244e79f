"""The CLI's live view of a run: a rich progress display for windows and stages, and key events as lines."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from blueprints.campaign import Campaign
from blueprints.common import format_duration
from blueprints.record import TimelineEvent
from flows import progress

_SHOWN = {
    "preflight",
    "approval",
    "inject",
    "verified",
    "verify-failed",
    "guardrail-breach",
    "abort",
    "rollback",
    "rollback-failed",
    "error",
    "note",
    "error-budget",
}


class RunView:
    """Subscribes to run events while open; remembers the run folder and final status."""

    def __init__(self, campaign: Campaign, console: Console) -> None:
        self.campaign = campaign
        self.console = console
        self.run_dir: str | None = None
        self.status = "failed"
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.stages = self.progress.add_task(f"{campaign.name}: stages", total=len(campaign.stages))
        self.window = self.progress.add_task("starting", total=None)
        self._open = False

    def __enter__(self) -> RunView:
        self.progress.start()
        progress.subscribe(self.on_event)
        self._open = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the display and unsubscribe (idempotent)."""
        if self._open:
            progress.unsubscribe(self.on_event)
            self.progress.stop()
            self._open = False

    def _phase(self, text: str) -> None:
        self.progress.reset(self.window, total=None, description=text)

    def on_event(self, ev: TimelineEvent) -> None:
        """Update the display for one run event."""
        where = f"[{ev.stage}{'/' + ev.fault if ev.fault else ''}] " if ev.stage else ""
        if ev.kind == "baseline-start":
            self._phase(f"baseline {format_duration(self.campaign.baseline)}")
        elif ev.kind == "stage-start" and ev.stage:
            observe = self.campaign.stage(ev.stage).observe
            self._phase(f"stage {ev.stage}: inject, observe {format_duration(observe)}")
        elif ev.kind == "recovery-start":
            self._phase(f"stage {ev.stage}: recovery {ev.data.get('seconds', 0):g}s")
        elif ev.kind == "cooldown":
            self._phase(f"cooldown {ev.data.get('seconds', 0):g}s")
        elif ev.kind == "stage-end":
            self.progress.advance(self.stages)
            self.progress.console.print(f"stage {ev.stage}: {ev.message}", markup=False, highlight=False)
        elif ev.kind == "campaign-end":
            self.status = str(ev.data.get("status", ev.message))
            self.run_dir = ev.data.get("run_dir")
            self._phase(f"finished: {self.status}")
        if ev.kind in _SHOWN:
            self.progress.console.print(f"  {ev.kind} {where}{ev.message}", markup=False, highlight=False)
