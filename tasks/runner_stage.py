"""One stage of a campaign: approval, then plan/ledger/inject/verify each fault, observe, roll back, recover.

The undo of every fault is registered (in the runner's ``active`` list and the ledger) before the fault is
applied, and the stage rolls back in ``finally`` in reverse order, whatever ended it: success, a guardrail
abort, an exception, KeyboardInterrupt or Prefect's TerminationSignal. The guardrails are watched from before the
first injection to the end of the recovery window: a tripped breaker stops further injections, ends the observe
window and the recovery window; a ``pause`` guardrail in breach holds the next injection until it clears.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from blueprints.campaign import Stage
from blueprints.record import Approval, FaultOutcome, StageOutcome
from tasks.runner_ops import LEASED, StageStatus
from tasks.runner_record import now
from tasks.runner_rollback import Active
from tasks.runner_watch import AbortReason, GuardrailWatcher
from tasks.runner_windows import wait

if TYPE_CHECKING:
    from tasks.runner import CampaignRunner


def ask_approval(runner: CampaignRunner, stage: Stage) -> Approval | None:
    """Ask the runner's approver about an approval-required stage and record the decision; None otherwise."""
    if stage.approval != "required":
        return None
    decision = runner.approve(stage)
    runner.recorder.event(
        "approval",
        f"{decision.decision}: {decision.comment}".rstrip(": "),
        stage=stage.name,
        decision=decision.decision,
        by=decision.by,
    )
    return decision


def _held(runner: CampaignRunner, stage: Stage, watcher: GuardrailWatcher) -> bool:
    """Wait while a pause guardrail holds injections; True when the stage must inject nothing more (the breaker
    tripped, or the run was cancelled)."""
    if watcher.guardrails and not watcher.abort.is_set():
        watcher.look_now()
    held = False
    while watcher.paused and not watcher.abort.is_set() and not runner.cancel.is_set():
        if not held:
            runner.recorder.event("note", "injections held: a pause guardrail is in breach", stage=stage.name)
            held = True
        watcher.abort.wait(0.25)
    return watcher.abort.is_set() or runner.cancel.is_set()


def inject_stage(
    runner: CampaignRunner, stage: Stage, faults: list[FaultOutcome], mine: list[Active],
    watcher: GuardrailWatcher | None = None,
) -> None:
    """Plan, record in the ledger, inject and verify each fault of ``stage``, registering its undo first; with a
    ``watcher``, no fault is injected while a pause guardrail holds, nor once its breaker tripped."""
    ops, ctx, recorder = runner.ops, runner.ctx, runner.recorder
    for spec, fid in zip(stage.faults, runner.campaign.fault_ids(stage)):
        if watcher is not None and _held(runner, stage, watcher):
            return
        fo = FaultOutcome(id=fid, kind=spec.kind, stage=stage.name)
        faults.append(fo)
        inj = ops.plan(spec, ctx, runner.run_id, stage.name, fid)
        fo.plan = inj.model_dump(mode="json")
        ops.record(inj)
        recorder.event("ledger", inj.summary, stage=stage.name, fault=fid)
        item = Active(inj, fo)
        runner.active.append(item)  # the undo is registered before the change
        mine.append(item)
        item.injection = inj = ops.inject(inj, ctx)
        fo.injected_at = now()
        ops.settle(inj, "applied", "")  # re-written with any undo state captured while injecting
        recorder.event("inject", inj.summary, stage=stage.name, fault=fid, targets=inj.targets)
        try:
            ev = ops.verify(inj, ctx)
            fo.verified, fo.evidence = ev.landed, {"summary": ev.summary, **ev.details}
            recorder.event(
                "verified" if ev.landed else "verify-failed", ev.summary, stage=stage.name, fault=fid
            )
        except Exception as e:  # noqa: BLE001 - recorded as unverified; the stage goes on
            fo.verified, fo.evidence = False, {"error": f"{type(e).__name__}: {e}"}
            recorder.event("verify-failed", str(e), stage=stage.name, fault=fid)


def _skipped(runner: CampaignRunner, stage: Stage, approval: Approval, started_at: datetime) -> StageOutcome:
    """Record and return the outcome of a stage the approver skipped or aborted."""
    decided: StageStatus = "skipped" if approval.decision == "skip" else "aborted"
    runner.operator_abort = approval.decision != "skip"
    out = StageOutcome(
        name=stage.name,
        status=decided,
        reason=f"approval: {approval.decision}",
        approval=approval,
        started_at=started_at,
        ended_at=now(),
    )
    runner.recorder.stage_outcome(out)
    runner.recorder.event("stage-end", decided, stage=stage.name, status=decided)
    return out


def _watcher(runner: CampaignRunner, stage: Stage, mine: list[Active]) -> GuardrailWatcher:
    """The stage's guardrail watcher: breaches and clearances recorded, agent leases of its faults renewed."""
    recorder = runner.recorder

    def breach(r: AbortReason) -> None:
        recorder.event(
            "guardrail-breach", r.reason, stage=stage.name, guardrail=r.guardrail, evaluable=r.evaluable,
            value=r.value, severity=r.severity,
        )

    def clear(name: str) -> None:
        recorder.event("note", f"guardrail {name!r} is within tolerance again", stage=stage.name, guardrail=name)

    def renew() -> None:
        if any(i.injection.kind in LEASED for i in mine):
            runner.renew_all()

    return GuardrailWatcher(runner.campaign.guardrails, runner.ops.evaluate, breach, renew, runner.renew_every,
                            on_clear=clear)


def _tripped(watcher: GuardrailWatcher) -> str:
    r = watcher.reason
    assert r is not None
    return f"guardrail {r.guardrail!r} ({r.severity}): {r.reason}"


def run_stage(runner: CampaignRunner, stage: Stage) -> StageOutcome:
    """Approval → plan/ledger/inject/verify each fault → observe → rollback → recovery, all under guardrails."""
    recorder = runner.recorder
    started = now()
    approval = ask_approval(runner, stage)
    if approval is not None and approval.decision in ("skip", "abort", "timeout"):
        return _skipped(runner, stage, approval, started)
    recorder.event("stage-start", stage.description, stage=stage.name, faults=len(stage.faults))
    faults: list[FaultOutcome] = []
    mine: list[Active] = []
    status: StageStatus = "completed"
    reason = ""
    fault_start = now()
    watcher = _watcher(runner, stage, mine).start()
    try:
        try:
            inject_stage(runner, stage, faults, mine, watcher)
            fault_start = min((f.injected_at for f in faults if f.injected_at), default=now())
            wait(stage.observe.total_seconds(), runner.cancel, watcher.abort)
            if watcher.reason is not None:
                status, reason = "aborted", _tripped(watcher)
                recorder.event("abort", reason, stage=stage.name)
            elif runner.cancel.is_set():
                status, reason = "aborted", "cancelled"
        except Exception as e:  # noqa: BLE001 - the stage fails, rollback still runs, the record says why
            status, reason = "failed", f"{type(e).__name__}: {e}"
            recorder.event("error", reason, stage=stage.name)
        except BaseException as e:
            status, reason, runner.unwinding = "aborted", f"interrupted: {type(e).__name__}", True
            raise
        finally:
            fault_end = now()
            try:
                runner.rollback_items(mine, stage.name)
            finally:
                recorder.window("fault", fault_start, fault_end, stage.name)
                out = StageOutcome(
                    name=stage.name,
                    status=status,
                    reason=reason,
                    approval=approval,
                    started_at=started,
                    ended_at=now(),
                    faults=faults,
                )
                recorder.stage_outcome(out)
        runner.window("recovery", stage.recovery.total_seconds(), stage.name, watcher.abort)
        if out.status == "completed" and watcher.reason is not None:  # tripped during the rollback or recovery
            out.status, out.reason = "aborted", f"{_tripped(watcher)} (after the faults were rolled back)"
            recorder.event("abort", out.reason, stage=stage.name)
    finally:
        watcher.stop()
    runner.halted = runner.halted or watcher.halted
    recorder.event("stage-end", f"{out.status} {out.reason}".strip(), stage=stage.name, status=out.status)
    return out
