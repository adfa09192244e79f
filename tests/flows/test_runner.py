"""The plain-Python campaign runner (tasks/run/runner.py), without Prefect, against a real HTTP guardrail."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from blueprints import parse
from tasks.errors import PreflightFailed
from tasks.faults.base import FaultContext
from tasks.probes import ProbeContext
from tasks.run.connect import plain_ops, probe_evaluator
from tasks.run.recorder import Recorder
from tasks.run.runner import CampaignRunner
from tests.flows.conftest import FileFault, Health, ListLedger

BLUEPRINT = """
name: runner-test
owner: tests
hypothesis: {{belief: the endpoint stays up, expectations: ["up >= 1 during fault"]}}
target: {{cluster: lab, namespaces: [default], blast_radius: {{max_pods: 1}}}}
observables: [{{name: up, query: up}}]
guardrails:
  - name: endpoint-healthy
    every: 0.1s
    probe: {{name: endpoint, type: http, url: "{url}", timeout: 1s}}
{setup}
baseline: 0s
stages:
  - name: first
    faults: [{{kind: noop, name: a}}, {{kind: noop, name: b}}]
    observe: {observe}
    recovery: 0s
  - name: second
    faults: [{{kind: noop, name: c}}]
    observe: 0.2s
    recovery: 0s
"""


SETUP = "setup: [{kind: noop, name: fix}, {kind: noop, name: tuning}]"


def make_runner(
    tmp_path: Path, health: Health, observe: str = "0.3s", setup: str = "", **kw: Any
) -> tuple[CampaignRunner, ListLedger]:
    """A runner over FileFault markers in tmp_path, guarded by the health endpoint."""
    campaign = parse(BLUEPRINT.format(url=health.url, observe=observe, setup=setup))
    ledger = ListLedger()
    ops = plain_ops({"noop": FileFault(tmp_path)}, ledger, probe_evaluator(ProbeContext()))
    ctx = FaultContext(cluster=None, run_id="r1")
    return CampaignRunner(campaign, ctx, ops, Recorder("r1"), **kw), ledger


def interrupt_verify_of(runner: CampaignRunner, fault_id: str) -> None:
    """Make verifying fault_id raise KeyboardInterrupt (an operator's Ctrl-C right after it was injected)."""
    real_verify = runner.ops.verify

    def interrupted(inj: Any, ctx: Any) -> Any:
        if inj.fault_id == fault_id:
            raise KeyboardInterrupt
        return real_verify(inj, ctx)

    runner.ops.verify = interrupted


def markers(tmp_path: Path) -> list[str]:
    """Marker files faults left behind."""
    return sorted(p.name for p in tmp_path.glob("*.injected"))


def test_success_rolls_back_every_fault_in_reverse_order(tmp_path: Path, health: Health) -> None:
    """A clean run completes every stage and rolls back each fault, last injected first."""
    runner, ledger = make_runner(tmp_path, health)
    assert runner.run() == "completed"
    assert markers(tmp_path) == []
    first = runner.recorder.stages[0]
    assert [f.rollback_ok for f in first.faults] == [True, True]
    assert [f.verified for f in first.faults] == [True, True]
    rollbacks = [e.fault for e in runner.recorder.events if e.kind == "rollback" and e.stage == "first"]
    assert rollbacks == ["b", "a"]
    settled = [c for c in ledger.calls if c[0] == "update" and c[2] == "rolled-back"]
    assert settled[:2] == [("update", "b", "rolled-back"), ("update", "a", "rolled-back")]


def test_ledger_is_written_before_inject(tmp_path: Path, health: Health) -> None:
    """Each fault's ledger entry precedes its inject event."""
    runner, _ = make_runner(tmp_path, health)
    runner.run()
    kinds = [(e.kind, e.fault) for e in runner.recorder.events if e.kind in ("ledger", "inject")]
    assert kinds[:4] == [("ledger", "a"), ("inject", "a"), ("ledger", "b"), ("inject", "b")]


def test_guardrail_breach_aborts_stage_and_rolls_back(tmp_path: Path, health: Health) -> None:
    """A guardrail that goes bad mid-stage aborts it at once, skips later stages, and rolls back."""
    runner, _ = make_runner(tmp_path, health, observe="30s")
    t0 = time.monotonic()
    # Mid-stage: once both faults are injected (a fixed delay can end before a slow preflight does).
    with health.breaks_when(
        lambda: [e.fault for e in list(runner.recorder.events) if e.kind == "inject"] == ["a", "b"]
    ):
        status = runner.run()
    assert status == "aborted"
    assert time.monotonic() - t0 < 25, "the 30 s observe window was cut short"
    assert markers(tmp_path) == []
    assert [s.name for s in runner.recorder.stages] == ["first"]
    assert runner.recorder.stages[0].status == "aborted"
    assert "endpoint-healthy" in runner.recorder.stages[0].reason
    assert any(e.kind == "guardrail-breach" for e in runner.recorder.events)


def test_unevaluable_guardrail_fails_closed(tmp_path: Path, health: Health) -> None:
    """A guardrail whose endpoint disappears mid-stage (not evaluable) aborts the stage too."""
    runner, _ = make_runner(tmp_path, health, observe="30s")
    runner.ops.evaluate = _raise_after(runner.ops.evaluate, calls=3)
    assert runner.run() == "aborted"
    assert markers(tmp_path) == []
    assert "could not be evaluated" in runner.recorder.stages[0].reason


def _raise_after(fn: Any, calls: int) -> Any:
    """Wrap an evaluator so that it raises ProbeError from the n-th call on (Prometheus gone)."""
    from tasks.errors import ProbeError

    count = {"n": 0}

    def wrapped(probe: Any) -> Any:
        count["n"] += 1
        if count["n"] >= calls:
            raise ProbeError("connection refused")
        return fn(probe)

    return wrapped


def test_exception_after_inject_rolls_back(tmp_path: Path, health: Health) -> None:
    """If the step after an inject fails (the ledger re-write), the stage fails and the fault is undone."""
    runner, ledger = make_runner(tmp_path, health)
    ledger.fail_on_applied = True  # the ledger write right after fault a's inject
    assert runner.run() == "failed"
    assert markers(tmp_path) == []
    stage = runner.recorder.stages[0]
    assert stage.status == "failed" and "ledger disk full" in stage.reason
    assert stage.faults[0].rollback_ok is True


def test_keyboard_interrupt_rolls_back_then_propagates(tmp_path: Path, health: Health) -> None:
    """A KeyboardInterrupt during a stage still rolls back every injected fault before propagating."""
    runner, _ = make_runner(tmp_path, health)
    interrupt_verify_of(runner, "b")
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    assert markers(tmp_path) == []
    assert runner.active == []


def test_preflight_failure_injects_nothing(tmp_path: Path, health: Health) -> None:
    """A guardrail already failing before the first stage fails preflight and nothing is injected."""
    runner, ledger = make_runner(tmp_path, health)
    health.healthy = False
    with pytest.raises(PreflightFailed, match="endpoint-healthy"):
        runner.run()
    assert ledger.calls == []
    assert markers(tmp_path) == []


def test_approval_skip_and_abort(tmp_path: Path, health: Health) -> None:
    """An approver's skip skips the stage; abort stops the campaign; both are recorded."""
    from blueprints.record import Approval
    from tasks.run.recorder import now

    runner, _ = make_runner(tmp_path, health)
    stages = [s.model_copy(update={"approval": "required"}) for s in runner.campaign.stages]
    runner.campaign = runner.campaign.model_copy(update={"stages": stages})
    answers = iter(["skip", "abort"])
    runner.approve = lambda stage: Approval(decision=next(answers), by="test", at=now())  # type: ignore[arg-type]
    assert runner.run() == "aborted"
    assert [(s.name, s.status) for s in runner.recorder.stages] == [
        ("first", "skipped"),
        ("second", "aborted"),
    ]
    assert runner.recorder.stages[0].approval is not None
    assert runner.recorder.stages[0].approval.decision == "skip"


def test_setup_holds_from_before_the_baseline_to_after_the_final_recovery(tmp_path: Path, health: Health) -> None:
    """The setup's changes are ledgered and in place before the baseline, still in place while every stage's
    faults are injected, and undone last, in reverse order."""
    runner, ledger = make_runner(tmp_path, health, setup=SETUP)
    quiet = timedelta(seconds=0.1)
    runner.campaign = runner.campaign.model_copy(update={"baseline": quiet, "final_recovery": quiet})
    seen: dict[str, list[str]] = {}
    runner.recorder.listeners.append(
        lambda ev: seen.setdefault(f"{ev.kind}:{ev.fault}", markers(tmp_path)) if ev.kind == "inject" else None
    )
    assert runner.run() == "completed"
    assert {"setup-fix.injected", "setup-tuning.injected"} <= set(seen["inject:a"])
    assert {"setup-fix.injected", "setup-tuning.injected"} <= set(seen["inject:c"])
    assert markers(tmp_path) == []
    records = [c[1] for c in ledger.calls if c[0] == "record"]
    assert records == ["fix", "tuning", "a", "b", "c"]
    rollbacks = [e.fault for e in runner.recorder.events if e.kind == "rollback"]
    assert rollbacks == ["b", "a", "c", "tuning", "fix"]
    baseline = next(w for w in runner.recorder.windows if w.kind == "baseline")
    applied = [e.at for e in runner.recorder.events if e.kind == "inject" and e.stage == "setup"]
    undone = [e.at for e in runner.recorder.events if e.kind == "rollback" and e.stage == "setup"]
    final = next(w for w in runner.recorder.windows if w.kind == "final-recovery")
    assert max(applied) <= baseline.start and min(undone) >= final.end
    assert [(f.id, f.verified, f.rollback_ok) for f in runner.recorder.setup] == [("fix", True, True), ("tuning", True, True)]


def test_setup_that_does_not_land_fails_the_run_before_any_stage(tmp_path: Path, health: Health) -> None:
    """A setup change whose verification says it did not land fails the run: no baseline, no stage, and what
    was applied is undone."""
    runner, _ = make_runner(tmp_path, health, setup=SETUP)
    real_verify = runner.ops.verify

    def tuning_missing(inj: Any, ctx: Any) -> Any:
        ev = real_verify(inj, ctx)
        return ev.model_copy(update={"landed": False}) if inj.fault_id == "tuning" else ev

    runner.ops.verify = tuning_missing
    assert runner.run() == "failed"
    assert runner.recorder.stages == [] and runner.recorder.windows == []
    assert markers(tmp_path) == []
    assert [(f.id, f.verified, f.rollback_ok) for f in runner.recorder.setup] == [("fix", True, True), ("tuning", False, True)]
    assert any(e.kind == "error" and "'tuning' did not land" in e.message for e in runner.recorder.events)


def test_setup_is_undone_after_an_interrupted_stage(tmp_path: Path, health: Health) -> None:
    """A KeyboardInterrupt in a stage rolls back the stage's faults, then the setup, before propagating."""
    runner, _ = make_runner(tmp_path, health, setup=SETUP)
    interrupt_verify_of(runner, "c")
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    assert markers(tmp_path) == [] and runner.active == []
    rollbacks = [e.fault for e in runner.recorder.events if e.kind == "rollback"]
    assert rollbacks[-3:] == ["c", "tuning", "fix"]


def test_plan_names_the_setup_before_the_stages(tmp_path: Path, health: Health) -> None:
    """The plan (what --dry-run and `gameday plan` print) shows the setup's changes before the first stage."""
    from flows.planview import render_plan

    runner, ledger = make_runner(tmp_path, health, setup=SETUP)
    text = render_plan(runner.campaign, runner.plan_all())
    assert text.index("setup (before the baseline") < text.index("  change fix (noop)") < text.index("stage first")
    assert ledger.calls == [] and markers(tmp_path) == []
