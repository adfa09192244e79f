"""What a run leaves behind: ``record.json``, ``frames.parquet``, the report, the Prefect artifact and events.

Each step is best effort after the record itself: a Prometheus that is gone or a report that fails must
not lose the record (the error is noted in it instead).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from blueprints.promql import presence_queries
from blueprints.record import CampaignRecord, TimelineEvent
from tasks.files import write_atomic

EVENT_NAMES: dict[str, str] = {
    "campaign-start": "gameday.campaign.started",
    "stage-start": "gameday.stage.started",
    "stage-end": "gameday.stage.ended",
    "guardrail-breach": "gameday.guardrail.aborted",
    "rollback-failed": "gameday.rollback.failed",
    "campaign-end": "gameday.campaign.ended",
}


def event_emitter(run_id: str, campaign: str, target: str) -> Callable[[TimelineEvent], None]:
    """A recorder listener that emits the Prefect events the brief names (others are skipped)."""
    from prefect.events import emit_event

    def emit(ev: TimelineEvent) -> None:
        name = EVENT_NAMES.get(ev.kind)
        if name is None:
            return
        emit_event(
            event=name,
            resource={
                "prefect.resource.id": f"gameday.run.{run_id}",
                "prefect.resource.name": campaign,
                "gameday.target": target,
            },
            occurred=ev.at,
            payload={
                "stage": ev.stage,
                "fault": ev.fault,
                "message": ev.message,
                **json.loads(json.dumps(ev.data, default=str)),
            },
        )

    return emit


def emit_verdict(record: CampaignRecord, verdict: str, report: str) -> None:
    """Emit the run's verdict as a Prefect event."""
    from prefect.events import emit_event

    emit_event(
        event="gameday.campaign.verdict",
        resource={
            "prefect.resource.id": f"gameday.run.{record.run_id}",
            "prefect.resource.name": record.campaign,
            "gameday.target": record.target.cluster,
        },
        payload={"verdict": verdict, "status": record.status, "report": report},
    )


def frame_step(start: datetime, end: datetime) -> float:
    """A range-query step that keeps each series under Prometheus's 11,000-point limit (at least 1 s)."""
    return max(1.0, (end - start).total_seconds() / 10_000)


def write_frames(
    run_dir: Path,
    prom_url: str | None,
    observables: list[Any],
    start: datetime,
    end: datetime,
    fetch: Callable[..., Any],
) -> tuple[str | None, str | None]:
    """Fetch every observable, and when each metric they read had series, for the whole run into
    frames.parquet; (file name, error)."""
    if not observables:
        return None, None
    if not prom_url:
        return None, "no Prometheus URL: no metric frames"
    try:
        queries = {o.name: o.query for o in observables}
        queries.update(presence_queries(list(queries.values())))
        frames = fetch(prom_url, queries, start, end, frame_step(start, end))
        frames.to_parquet(run_dir / "frames.parquet", index=False)
        return "frames.parquet", None
    except Exception as e:  # noqa: BLE001 - the record is worth more than the frames
        return None, f"could not fetch metric frames: {type(e).__name__}: {e}"


def write_record(run_dir: Path, record: CampaignRecord) -> Path:
    """Write record.json (atomically) and return its path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "record.json"
    write_atomic(path, record.model_dump_json(indent=2, by_alias=True))
    return path


def summary_markdown(paths: Any, record: CampaignRecord) -> str:
    """The report's Markdown summary, or a minimal one from the record."""
    md = getattr(paths, "summary", None) or getattr(paths, "markdown", None)
    if md is not None and Path(md).exists():
        return Path(md).read_text()
    lines = [
        f"# {record.campaign}: {record.status}",
        "",
        f"run `{record.run_id}` on `{record.target.cluster}`",
        "",
    ]
    lines += [f"- stage **{s.name}**: {s.status} {s.reason}".rstrip() for s in record.stages]
    if record.rollback_problems:
        lines += ["", "**Rollback problems** (run `gameday reconcile`):"] + [
            f"- {p}" for p in record.rollback_problems
        ]
    return "\n".join(lines) + "\n"


def publish_artifact(markdown: str, campaign: str) -> None:
    """Publish the summary as a Prefect Markdown artifact (key: gameday-<campaign>)."""
    from prefect.artifacts import create_markdown_artifact

    key = "gameday-" + "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in campaign.lower())
    create_markdown_artifact(markdown=markdown, key=key[:100], description=f"gameday run of {campaign}")
