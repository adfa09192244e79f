"""The run record: everything a finished (or aborted) campaign leaves behind, as data.

``flows/`` writes it (``record.json`` beside ``frames.parquet``); ``reports/`` reads it. Timestamps are
timezone-aware UTC. Metric frames are stored in long form: one row per (observable, series, time).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

EventKind = Literal[
    "campaign-start", "preflight", "baseline-start", "baseline-end", "stage-start", "approval", "ledger",
    "inject", "verified", "verify-failed", "guardrail-breach", "abort", "rollback", "rollback-failed",
    "recovery-start", "stage-end", "cooldown", "campaign-end", "error", "note", "error-budget",
]


class _Rec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TimelineEvent(_Rec):
    """Something that happened at one instant."""

    at: datetime
    kind: EventKind
    stage: str | None = None
    fault: str | None = None
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class Window(_Rec):
    """A named time window of the run."""

    kind: Literal["baseline", "fault", "recovery", "cooldown", "final-recovery"]
    stage: str | None = None
    start: datetime
    end: datetime


class FaultOutcome(_Rec):
    """What happened to one fault of one stage: plan, landing evidence, rollback."""

    id: str
    kind: str
    stage: str
    plan: dict[str, Any] = Field(default_factory=dict, description="the Injection: what changes, how it is undone")
    injected_at: datetime | None = None
    verified: bool = False
    evidence: dict[str, Any] = Field(default_factory=dict)
    rolled_back_at: datetime | None = None
    rollback_ok: bool | None = None
    rollback_error: str | None = None


class Approval(_Rec):
    """The decision taken at an approval pause."""

    decision: Literal["go", "skip", "abort", "timeout", "auto"]
    by: str = ""
    comment: str = ""
    at: datetime


class StageOutcome(_Rec):
    """One stage's result."""

    name: str
    status: Literal["completed", "aborted", "skipped", "failed"]
    reason: str = ""
    approval: Approval | None = None
    started_at: datetime
    ended_at: datetime
    faults: list[FaultOutcome] = Field(default_factory=list)


class TargetInfo(_Rec):
    """The target as resolved at run time, with its topology fingerprint."""

    cluster: str
    api_server: str = ""
    prometheus_url: str = ""
    fingerprint: str = ""
    topology: dict[str, Any] = Field(default_factory=dict)


class CampaignRecord(_Rec):
    """Everything a run leaves behind, as data (JSON on disk)."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    campaign: str
    description: str = ""
    owner: str = ""
    started_by: str = ""
    dry_run: bool = False
    status: Literal["completed", "aborted", "failed", "cancelled"]
    started_at: datetime
    ended_at: datetime
    target: TargetInfo
    blueprint: dict[str, Any] = Field(description="the validated Campaign, as JSON")
    blueprint_text: str = ""
    windows: list[Window] = Field(default_factory=list)
    stages: list[StageOutcome] = Field(default_factory=list)
    setup: list[FaultOutcome] = Field(default_factory=list, description="the campaign's setup: changes held for the whole run")
    events: list[TimelineEvent] = Field(default_factory=list)
    rollback_problems: list[str] = Field(default_factory=list)
    frames_file: str | None = Field(default=None, description="frames file, relative to the record's folder")
    error: str | None = None
