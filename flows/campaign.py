"""``run_campaign``: the Prefect flow that runs one blueprint against one target.

Thin: load, connect, hand the plain runner (``tasks/run/runner.py``) Prefect-task operations, always roll back
in ``finally``, write the record and the report. If the run is cancelled or crashes hard enough that
``finally`` cannot finish, the ``on_cancellation``/``on_crashed`` hooks reconcile this run's ledger from a
fresh process (they find the run through a marker file written at start).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from prefect import Flow, flow
from prefect.client.schemas.objects import FlowRun, State
from prefect.runtime import flow_run

from blueprints import Campaign
from blueprints.record import CampaignRecord
from flows import progress
from flows.approval import approver
from flows.locking import target_lock
from flows.outputs import (
    emit_verdict,
    event_emitter,
    publish_artifact,
    summary_markdown,
    write_frames,
    write_record,
)
from flows.params import CampaignParams
from tasks.errors import GamedayError
from tasks.run.recorder import Recorder
from tasks.run.runner import CampaignRunner
from tasks.settings import Settings
from tasks.steps import build_report_step, fetch_frames_step, prefect_ops


def run_name() -> str:
    """Flow run name: '<blueprint> on <target>'."""
    raw: Any = flow_run.get_parameters().get("params") or {}
    p = raw if isinstance(raw, dict) else raw.model_dump()
    blueprint = Path(str(p.get("blueprint", "campaign"))).stem
    suffix = " (dry run)" if p.get("dry_run") else ""
    return f"{blueprint} on {p.get('target') or 'blueprint target'}{suffix}"


def _marker_dir(settings: Settings) -> Path:
    return settings.state_dir / "flow-runs"


def reconcile_hook(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """on_cancellation / on_crashed: revert what this run left open and drop its lease (fresh process)."""
    from flows.reconcile import reconcile_target

    settings = Settings()
    marker = _marker_dir(settings) / f"{flow_run.id}.json"
    if not marker.exists():
        return
    info = json.loads(marker.read_text())
    reconcile_target(info["blueprint_target"], settings, run_id=info["run_id"], release_lease=info["run_id"])
    marker.unlink(missing_ok=True)


@flow(
    name="run-campaign",
    flow_run_name=run_name,
    log_prints=True,
    validate_parameters=True,
    on_cancellation=[reconcile_hook],
    on_crashed=[reconcile_hook],
)
def run_campaign(params: CampaignParams = CampaignParams()) -> str:  # noqa: B008 - pydantic default is immutable here
    """Run a campaign: preflight, baseline, stages (always rolled back), recovery; returns the run folder.

    With ``dry_run`` it returns the plan text instead and changes nothing.
    """
    settings = Settings()
    campaign = params.campaign()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id = f"{campaign.name}-{stamp}"
    run_dir = (settings.state_dir / "runs" / run_id).resolve()
    from tasks.run.connect import connect

    conn = connect(campaign, settings, run_id, selection_seed=params.selection_seed)
    if params.dry_run:
        from flows.planview import plan_text

        try:
            text = plan_text(campaign, conn.ctx, prefect_ops(conn.ops), params.selection_seed or run_id)
        finally:
            conn.close()
        print(text)
        return text
    recorder = Recorder(run_id, [progress.publish])
    runner = CampaignRunner(campaign, conn.ctx, prefect_ops(conn.ops), recorder, approver(params.approval))
    recorder.listeners.append(event_emitter(run_id, campaign.name, campaign.target.cluster))

    def lost(why: str) -> None:
        recorder.event("error", f"campaign lease lost, stopping: {why}")
        runner.cancel.set()

    lock = ExitStack()
    try:
        lock.enter_context(target_lock(conn.cluster, campaign.target.cluster, run_id, settings.ledger_namespace, lost,
                                       ttl_s=settings.lease_ttl_s))
    except BaseException:
        conn.close()
        raise
    marker = _marker_dir(settings) / f"{flow_run.get_id()}.json"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(
        json.dumps(
            {
                "run_id": run_id,
                "blueprint_target": campaign.target.model_dump(mode="json"),
                "blueprint": str(params.blueprint),
            }
        )
    )
    status, error, interrupted = "failed", None, False
    failure: GamedayError | None = None
    try:
        status = runner.run()
    except GamedayError as e:
        failure, error = e, str(e)
        recorder.event("error", error)
    except BaseException as e:  # TerminationSignal, KeyboardInterrupt: roll back, record, then re-raise
        status, error, interrupted = "cancelled", f"interrupted: {type(e).__name__}", True
        raise
    finally:
        try:
            runner.rollback_all(unwinding=interrupted)
        finally:
            lock.close()
            recorder.event(
                "campaign-end",
                status,
                status=status,
                run_dir=str(run_dir),
                rollback_problems=len(recorder.rollback_problems),
            )
            record = _finish(
                recorder, conn, campaign, status, error, run_dir, params, not runner.unwinding
            )
            conn.close()
            marker.unlink(missing_ok=True)
    if record.status == "failed" and failure is not None:
        raise failure  # the error itself, its type intact: PreflightFailed, TargetError, ...
    return str(run_dir)


def _finish(
    recorder: Recorder,
    conn: Any,
    campaign: Campaign,
    status: str,
    error: str | None,
    run_dir: Path,
    params: CampaignParams,
    interactive: bool,
) -> CampaignRecord:
    """Write record, frames, report and artifact (frames/report skipped while unwinding from a cancellation)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    frames_file, frames_error = None, None
    if interactive:
        frames_file, frames_error = write_frames(
            run_dir,
            conn.prometheus_url,
            campaign.observables,
            recorder.started_at,
            datetime.now(UTC),
            lambda *a: fetch_frames_step(*a),
        )
        if frames_error:
            recorder.event("note", frames_error)
    record = recorder.build(
        campaign=campaign.name,
        description=campaign.description,
        owner=campaign.owner,
        status=status,
        target=conn.target,
        blueprint=campaign.model_dump(mode="json", by_alias=True),
        blueprint_text=campaign.source_yaml,
        started_by=params.started_by,
        frames_file=frames_file,
        error=error,
    )
    write_record(run_dir, record)
    if interactive:
        _report(run_dir, record, Settings())
    return record


def _report(run_dir: Path, record: CampaignRecord, settings: Settings) -> None:
    """Build the report, publish its summary, emit the verdict (best effort: the record is already on disk)."""
    paths: Any = None
    try:
        import reports

        history = reports.HistoryStore(settings.history_path)
        paths = build_report_step(partial(reports.build, history=history), run_dir)
        emit_verdict(record, paths.verdict, str(paths.html))
    except Exception as e:  # noqa: BLE001 - a failed report must not fail a run that rolled back
        (run_dir / "report-error.txt").write_text(f"{type(e).__name__}: {e}\n")
    try:
        publish_artifact(summary_markdown(paths, record), record.campaign)
    except Exception:  # noqa: BLE001 - no API (e.g. unwinding): the summary is still on disk
        pass
