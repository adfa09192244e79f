"""In-process listeners for run events: the CLI's progress display subscribes here, the flow publishes.

A flow run started by the CLI runs in the same process, so a module-level list is enough; a flow run on
a worker has no listeners and loses nothing.
"""

from __future__ import annotations

from blueprints.record import TimelineEvent
from tasks.run.recorder import Listener

LISTENERS: list[Listener] = []


def subscribe(listener: Listener) -> None:
    """Be told of every timeline event of runs in this process."""
    LISTENERS.append(listener)


def unsubscribe(listener: Listener) -> None:
    """Stop being told."""
    if listener in LISTENERS:
        LISTENERS.remove(listener)


def publish(event: TimelineEvent) -> None:
    """Tell every listener (a listener that raises is skipped)."""
    for listener in LISTENERS:
        try:
            listener(event)
        except Exception:  # noqa: BLE001 - a display must never break a run
            pass
