"""One stage of a campaign, and the quiet windows around stages.

A stage (:class:`StageRun`): approval, then plan/ledger/inject/verify each fault, observe, roll back, recover.
The undo of every fault is registered (in the runner's ``active`` list and the ledger) before the fault is
applied, and the stage rolls back in ``finally`` in reverse order, whatever ended it: success, a guardrail
abort, an exception, KeyboardInterrupt or Prefect's TerminationSignal. The guardrails are watched from before the
first injection to the end of the recovery window: a tripped breaker stops further injections, ends the observe
window and the recovery window; a ``pause`` guardrail in breach holds the next injection until it clears.

A quiet window (baseline, recovery, cooldown, final recovery: :func:`quiet_window`) is waited out in short
slices so a cancellation (or a stage's guardrail abort) ends it within a quarter of a second; every window is
recorded with its start and end.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from blueprints.campaign import Campaign, Stage
from blueprints.record import Approval, EventKind, FaultOutcome, StageOutcome
from tasks.faults import leased
from tasks.faults.base import FaultContext, Injection
from tasks.faults.selection import committed
from tasks.run.guardrails import AbortReason, GuardrailWatcher
from tasks.run.ops import Active, Approver, Ops, StageStatus, rollback
from tasks.run.recorder import Recorder, now


@dataclass
class StageRun:
    """One stage of a campaign, given only what a stage needs; the runner reads back ``unwinding``,
    ``operator_abort`` and ``halted`` when it ends."""

    stage: Stage
    campaign: Campaign
    """Where the stage's fault ids and the guardrails come from."""
    ctx: FaultContext
    ops: Ops
    recorder: Recorder
    active: list[Active]
    """The run's active injections: each fault's undo is registered here before the fault is applied."""
    cancel: threading.Event
    approve: Approver
    renew_every: float = 5.0
    unwinding: bool = False
    """Interrupted (KeyboardInterrupt, Prefect's TerminationSignal): rollbacks use the plain operations."""
    operator_abort: bool = False
    """The approver aborted the stage: no further stage runs."""
    halted: bool = False
    """A halt guardrail tripped: no further stage runs, whatever ``continue_on_abort`` says."""

    def current_ops(self) -> Ops:
        """The operations to use now: plain ones while unwinding from a cancellation."""
        return self.ops.for_unwinding(self.unwinding)

    def rollback(self, items: list[Active]) -> None:
        """Roll back ``items`` in reverse order; every one is tried even if an earlier one fails."""
        rollback(items, self.active, self.current_ops(), self.ctx, self.recorder, self.stage.name)

    def ask_approval(self) -> Approval | None:
        """Ask the approver about an approval-required stage and record the decision; None otherwise."""
        if self.stage.approval != "required":
            return None
        decision = self.approve(self.stage)
        self.recorder.event(
            "approval",
            f"{decision.decision}: {decision.comment}".rstrip(": "),
            stage=self.stage.name,
            decision=decision.decision,
            by=decision.by,
        )
        return decision

    def _held(self, watcher: GuardrailWatcher) -> bool:
        """Wait while a pause guardrail holds injections; True when the stage must inject nothing more (the
        breaker tripped, or the run was cancelled)."""
        if watcher.guardrails and not watcher.abort.is_set():
            watcher.look_now()
        held = False
        while watcher.paused and not watcher.abort.is_set() and not self.cancel.is_set():
            if not held:
                self.recorder.event("note", "injections held: a pause guardrail is in breach", stage=self.stage.name)
                held = True
            watcher.abort.wait(0.25)
        return watcher.abort.is_set() or self.cancel.is_set()

    def inject(self, faults: list[FaultOutcome], mine: list[Active], watcher: GuardrailWatcher | None = None) -> None:
        """Plan, record in the ledger, inject and verify each fault of the stage, registering its undo first; with
        a ``watcher``, no fault is injected while a pause guardrail holds, nor once its breaker tripped."""
        ops, ctx, recorder, stage = self.ops, self.ctx, self.recorder, self.stage
        for spec, fid in zip(stage.faults, self.campaign.fault_ids(stage)):
            if watcher is not None and self._held(watcher):
                return
            fo = FaultOutcome(id=fid, kind=spec.kind, stage=stage.name)
            faults.append(fo)
            inj = ops.plan(spec, ctx, recorder.run_id, stage.name, fid)
            self._held_to_plan(inj)
            fo.plan = inj.model_dump(mode="json")
            ops.record(inj)
            recorder.event("ledger", inj.summary, stage=stage.name, fault=fid)
            item = Active(inj, fo)
            self.active.append(item)  # the undo is registered before the change
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

    def _held_to_plan(self, injection: Injection) -> None:
        """Note when the stage's plan of a fault names other targets than the run's plan (``ctx.committed``): a
        planned target was gone, and another was picked in its place."""
        planned = committed(self.ctx, self.stage.name, injection.fault_id)
        now_targets = set(injection.targets)
        if not planned or planned == now_targets:
            return
        self.recorder.event(
            "note", f"{injection.fault_id}: planned again at the stage: preflight named "
                    f"{', '.join(sorted(planned - now_targets))}, now "
                    f"{', '.join(sorted(now_targets - planned)) or 'nothing in their place'}",
            stage=self.stage.name, fault=injection.fault_id, planned=sorted(planned), now=injection.targets)

    def _skipped(self, approval: Approval, started_at: datetime) -> StageOutcome:
        """Record and return the outcome of a stage the approver skipped or aborted."""
        decided: StageStatus = "skipped" if approval.decision == "skip" else "aborted"
        self.operator_abort = approval.decision != "skip"
        out = StageOutcome(
            name=self.stage.name,
            status=decided,
            reason=f"approval: {approval.decision}",
            approval=approval,
            started_at=started_at,
            ended_at=now(),
        )
        self.recorder.stage_outcome(out)
        self.recorder.event("stage-end", decided, stage=self.stage.name, status=decided)
        return out

    def _watcher(self, mine: list[Active]) -> GuardrailWatcher:
        """The stage's guardrail watcher: breaches and clearances recorded, agent leases renewed."""
        recorder, stage = self.recorder, self.stage.name

        def breach(r: AbortReason) -> None:
            recorder.event(
                "guardrail-breach", r.reason, stage=stage, guardrail=r.guardrail, evaluable=r.evaluable,
                value=r.value, severity=r.severity,
            )

        def clear(name: str) -> None:
            recorder.event("note", f"guardrail {name!r} is within tolerance again", stage=stage, guardrail=name)

        def renew() -> None:
            if any(leased(i.injection.kind) for i in mine):
                for item in list(self.active):
                    self.ops.renew(item.injection, self.ctx)

        return GuardrailWatcher(self.campaign.guardrails, self.ops.evaluate, breach, renew, self.renew_every,
                                on_clear=clear)

    def run(self) -> StageOutcome:
        """Approval → plan/ledger/inject/verify each fault → observe → rollback → recovery, all under
        guardrails."""
        recorder, stage = self.recorder, self.stage
        started = now()
        approval = self.ask_approval()
        if approval is not None and approval.decision in ("skip", "abort", "timeout"):
            return self._skipped(approval, started)
        recorder.event("stage-start", stage.description, stage=stage.name, faults=len(stage.faults))
        faults: list[FaultOutcome] = []
        mine: list[Active] = []
        status: StageStatus = "completed"
        reason = ""
        fault_start = now()
        watcher = self._watcher(mine).start()
        try:
            try:
                self.inject(faults, mine, watcher)
                fault_start = min((f.injected_at for f in faults if f.injected_at), default=now())
                wait(stage.observe.total_seconds(), self.cancel, watcher.abort)
                if watcher.reason is not None:
                    status, reason = "aborted", _tripped(watcher)
                    recorder.event("abort", reason, stage=stage.name)
                elif self.cancel.is_set():
                    status, reason = "aborted", "cancelled"
            except Exception as e:  # noqa: BLE001 - the stage fails, rollback still runs, the record says why
                status, reason = "failed", f"{type(e).__name__}: {e}"
                recorder.event("error", reason, stage=stage.name)
            except BaseException as e:
                status, reason, self.unwinding = "aborted", f"interrupted: {type(e).__name__}", True
                raise
            finally:
                fault_end = now()
                try:
                    self.rollback(mine)
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
            quiet_window(recorder, self.cancel, "recovery", stage.recovery.total_seconds(), stage.name, watcher.abort)
            if out.status == "completed" and watcher.reason is not None:  # tripped during the rollback or recovery
                out.status, out.reason = "aborted", f"{_tripped(watcher)} (after the faults were rolled back)"
                recorder.event("abort", out.reason, stage=stage.name)
        finally:
            watcher.stop()
        self.halted = self.halted or watcher.halted
        recorder.event("stage-end", f"{out.status} {out.reason}".strip(), stage=stage.name, status=out.status)
        return out


def _tripped(watcher: GuardrailWatcher) -> str:
    r = watcher.reason
    assert r is not None
    return f"guardrail {r.guardrail!r} ({r.severity}): {r.reason}"


_START_EVENTS: dict[str, EventKind] = {
    "baseline": "baseline-start",
    "recovery": "recovery-start",
    "cooldown": "cooldown",
}


def wait(seconds: float, cancel: threading.Event, abort: threading.Event | None = None) -> bool:
    """Wait up to ``seconds``; True when cut short by an abort or cancellation."""
    deadline = now().timestamp() + seconds
    while True:
        left = deadline - now().timestamp()
        if left <= 0:
            return False
        if cancel.is_set() or (abort is not None and abort.is_set()):
            return True
        (abort or cancel).wait(min(left, 0.25))


def quiet_window(
    recorder: Recorder, cancel: threading.Event, kind: str, seconds: float, stage: str | None = None,
    abort: threading.Event | None = None,
) -> None:
    """Wait out a quiet window (baseline, recovery, cooldown, final recovery) and record it; ``abort`` (a stage's
    guardrail breaker) cuts it short too."""
    if seconds <= 0:
        return
    start = now()
    evt = _START_EVENTS.get(kind)
    if evt:
        recorder.event(evt, f"{kind} for {seconds:g}s", stage=stage, seconds=seconds)
    wait(seconds, cancel, abort)
    recorder.window(kind, start, now(), stage)
    if kind == "baseline":
        recorder.event("baseline-end", stage=stage)
