"""The run_campaign and reconcile flows under a Prefect test harness, against a real API server."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from blueprints.record import CampaignRecord
from tests.conftest import poll
from tests.flows.conftest import Health

BLUEPRINT = """\
name: flow-test
owner: tests
hypothesis: {{belief: the endpoint stays up, expectations: ["up >= 0 during fault"]}}
target: {{cluster: lab, namespaces: [default], blast_radius: {{max_pods: 1}}}}
observables: [{{name: up, query: up}}]
guardrails:
  - name: endpoint-healthy
    every: 0.2s
    probe: {{name: endpoint, type: http, url: "{url}", timeout: 1s}}
baseline: 0.2s
stages:
  - name: first
    approval: {approval}
    approval_timeout: 1s
    faults: [{{kind: noop, name: a}}, {{kind: noop, name: b}}]
    observe: {observe}
    recovery: 0.1s
"""


def blueprint(tmp_path: Path, health: Health, observe: str = "0.5s", approval: str = "none") -> str:
    """Write the test blueprint and return its path."""
    path = tmp_path / "flow-test.yaml"
    path.write_text(BLUEPRINT.format(url=health.url, observe=observe, approval=approval))
    return str(path)


def ledger_states(state: Path) -> list[str]:
    """Every ledger entry's state across the state dir's local ledgers."""
    out: list[str] = []
    for f in (state / "ledger").glob("*.json"):
        out += [e["state"] for e in json.loads(f.read_text())["entries"]]
    return out


def test_flow_success_rolls_back_and_writes_record(
    harness: None, state: Path, tmp_path: Path, health: Health
) -> None:
    """A clean run completes, every ledger entry is rolled back, record and report are written."""
    from flows.campaign import run_campaign
    from flows.params import CampaignParams

    run_dir = Path(run_campaign(CampaignParams(blueprint=blueprint(tmp_path, health), approval="auto")))
    record = CampaignRecord.model_validate_json((run_dir / "record.json").read_text())
    assert record.status == "completed"
    assert [f.rollback_ok for f in record.stages[0].faults] == [True, True]
    assert ledger_states(state) == ["rolled-back", "rolled-back"]
    assert run_dir.parent == (state / "runs").resolve()
    assert not (run_dir / "report-error.txt").exists(), (run_dir / "report-error.txt").read_text()
    assert (run_dir / "report" / "report.html").exists()


def test_flow_guardrail_breach_aborts_and_rolls_back(
    harness: None, state: Path, tmp_path: Path, health: Health
) -> None:
    """A guardrail going bad mid-stage aborts the campaign, and every fault is still rolled back."""
    from flows.campaign import run_campaign
    from flows.params import CampaignParams

    # Mid-stage: once both faults are applied (a fixed delay can end before a slow preflight does).
    with health.breaks_when(lambda: ledger_states(state) == ["applied", "applied"]):
        run_dir = Path(
            run_campaign(
                CampaignParams(blueprint=blueprint(tmp_path, health, observe="60s"), approval="auto")
            )
        )
    record = CampaignRecord.model_validate_json((run_dir / "record.json").read_text())
    assert record.status == "aborted"
    assert record.stages[0].status == "aborted"
    assert ledger_states(state) == ["rolled-back", "rolled-back"]
    assert any(e.kind == "guardrail-breach" for e in record.events)


def test_flow_approval_pause_times_out_to_abort(
    harness: None, state: Path, tmp_path: Path, health: Health
) -> None:
    """An approval-required stage nobody answers is aborted at approval_timeout, and nothing is injected."""
    from flows.campaign import run_campaign
    from flows.params import CampaignParams

    run_dir = Path(
        run_campaign(
            CampaignParams(blueprint=blueprint(tmp_path, health, approval="required"), approval="pause")
        )
    )
    record = CampaignRecord.model_validate_json((run_dir / "record.json").read_text())
    assert record.stages[0].status == "aborted"
    assert record.stages[0].approval is not None and record.stages[0].approval.decision == "timeout"
    assert ledger_states(state) == []


def test_flow_dry_run_changes_nothing(harness: None, state: Path, tmp_path: Path, health: Health) -> None:
    """A dry run prints the plan with its undo and writes no ledger and no run folder."""
    from flows.campaign import run_campaign
    from flows.params import CampaignParams

    text = run_campaign(CampaignParams(blueprint=blueprint(tmp_path, health), dry_run=True))
    assert "fault a (noop)" in text and "undo: nothing" in text
    assert ledger_states(state) == []
    assert not (state / "runs").exists()


def test_flow_emits_events_and_publishes_summary(
    harness: None, state: Path, tmp_path: Path, health: Health
) -> None:
    """A run emits campaign/stage/verdict events readable from the API and publishes a Markdown artifact."""
    import anyio
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    from flows.campaign import run_campaign
    from flows.params import CampaignParams

    run_dir = Path(run_campaign(CampaignParams(blueprint=blueprint(tmp_path, health), approval="auto")))
    run_id = run_dir.name
    wanted = {
        "gameday.campaign.started",
        "gameday.stage.started",
        "gameday.stage.ended",
        "gameday.campaign.verdict",
    }

    async def seen() -> set[str]:
        async with get_client() as client:
            page = await client.read_events(
                EventFilter(
                    event=EventNameFilter(prefix=["gameday."]),
                    resource=EventResourceFilter(id=[f"gameday.run.{run_id}"]),
                ),
                limit=50,
            )
            return {e.event for e in page.events}

    poll(lambda: wanted <= anyio.run(seen), 30, f"events {sorted(wanted)}")

    async def artifacts() -> list[str]:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["gameday-flow-test"]))
            )
            return [str(a.data) for a in found]

    texts = anyio.run(artifacts)
    assert texts and any("flow-test" in t for t in texts)


def test_flow_approval_resumed_with_go_runs_the_stage(
    harness: None, state: Path, tmp_path: Path, health: Health
) -> None:
    """A paused approval resumed with decision 'go' (as from the UI) runs the stage and records who approved."""
    import anyio
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.flow_runs import resume_flow_run

    from flows.campaign import run_campaign
    from flows.params import CampaignParams

    path = tmp_path / "flow-test.yaml"
    path.write_text(
        BLUEPRINT.format(url=health.url, observe="0.3s", approval="required").replace(
            "approval_timeout: 1s", "approval_timeout: 60s"
        )
    )
    result: dict[str, str] = {}
    worker = threading.Thread(
        target=lambda: result.update(
            run_dir=run_campaign(CampaignParams(blueprint=str(path), approval="pause", target="lab"))
        ),
        daemon=True,
    )
    worker.start()

    async def paused_id() -> Any:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["flow-test on lab"]))
            )
            return next((r.id for r in runs if r.state is not None and r.state.is_paused()), None)

    run_id = poll(lambda: anyio.run(paused_id), 60, "the flow run to pause for approval")
    resume_flow_run(run_id, run_input={"decision": "go", "comment": "looks fine", "by": "tester"})
    worker.join(timeout=60)
    assert not worker.is_alive()
    record = CampaignRecord.model_validate_json((Path(result["run_dir"]) / "record.json").read_text())
    stage = record.stages[0]
    assert stage.status == "completed"
    assert stage.approval is not None and (stage.approval.decision, stage.approval.by) == ("go", "tester")
    assert ledger_states(state) == ["rolled-back", "rolled-back"]


def test_the_flow_runs_the_campaign_handed_down_without_reading_the_blueprint_again(
    harness: None, state: Path, tmp_path: Path, health: Health
) -> None:
    """Parameters carrying the campaign the CLI loaded (with a --set applied) run it even after the file is gone,
    and the record keeps the YAML as validated, override included."""
    from flows.campaign import run_campaign
    from flows.params import CampaignParams

    path = Path(blueprint(tmp_path, health))
    params = CampaignParams(blueprint=str(path), approval="auto", overrides=["stages[0].recovery=0.3s"])
    campaign = params.campaign()
    path.unlink()
    run_dir = Path(run_campaign(params))
    record = CampaignRecord.model_validate_json((run_dir / "record.json").read_text())
    assert record.status == "completed" and record.campaign == campaign.name
    assert "recovery: 0.3s" in record.blueprint_text
