"""The campaign runner in plain Python: preflight, baseline, stages, rollback, recovery, cooldown.

No Prefect here: ``flows/campaign.py`` hands in :class:`Ops` whose members are Prefect task wrappers
(``tasks/steps.py``); tests hand in the plain functions. Every injection is registered in ``active``
before it is applied; every stage rolls back in ``finally`` in reverse order (success, abort, exception,
KeyboardInterrupt, Prefect's TerminationSignal), and :meth:`CampaignRunner.rollback_all` undoes
anything still active (the flow calls it in its own ``finally``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from blueprints.campaign import Campaign, Stage
from blueprints.faults import Fault
from blueprints.record import Approval, EventKind, FaultOutcome, StageOutcome
from tasks.errors import GamedayError, PreflightFailed
from tasks.faults.base import Evidence, FaultContext, Injection
from tasks.runner_record import Recorder, now
from tasks.runner_watch import AbortReason, Evaluate, GuardrailWatcher

Approver = Callable[[Stage], Approval]
StageStatus = Literal["completed", "aborted", "skipped", "failed"]


@dataclass
class Ops:
    """The operations the runner sequences: plain functions, or their Prefect task wrappers."""

    plan: Callable[[Fault, FaultContext, str, str, str], Injection]
    record: Callable[[Injection], None]
    inject: Callable[[Injection, FaultContext], Injection]
    verify: Callable[[Injection, FaultContext], Evidence]
    rollback: Callable[[Injection, FaultContext], None]
    settle: Callable[[Injection, str, str], None]
    """Move the ledger entry to applied | rolled-back | rollback-failed (with an error)."""
    renew: Callable[[Injection, FaultContext], None]
    evaluate: Evaluate
    plain: Ops | None = None
    """The un-orchestrated operations, used for rollback while unwinding from a cancellation."""


def auto_approve(stage: Stage) -> Approval:
    """Approve every stage without asking (recorded as 'auto')."""
    return Approval(decision="auto", by="gameday --yes", comment="", at=now())


@dataclass
class _Active:
    injection: Injection
    outcome: FaultOutcome


@dataclass
class CampaignRunner:
    """Runs one campaign against one FaultContext, recording everything in ``recorder``."""

    campaign: Campaign
    ctx: FaultContext
    ops: Ops
    recorder: Recorder
    approve: Approver = auto_approve
    renew_every: float = 5.0
    cancel: threading.Event = field(default_factory=threading.Event)
    active: list[_Active] = field(default_factory=list)
    status: str = "completed"
    unwinding: bool = False
    operator_abort: bool = False

    @property
    def run_id(self) -> str:
        """This run's id."""
        return self.recorder.run_id

    # -- planning and preflight -------------------------------------------------------------------
    def plan_all(self) -> dict[str, list[Injection]]:
        """Plan every fault of every stage (reads only); raises BlastRadiusExceeded etc."""
        plans: dict[str, list[Injection]] = {}
        for stage in self.campaign.stages:
            ids = self.campaign.fault_ids(stage)
            plans[stage.name] = [
                self.ops.plan(f, self.ctx, self.run_id, stage.name, i) for f, i in zip(stage.faults, ids)
            ]
        return plans

    def preflight(self) -> dict[str, list[Injection]]:
        """Steady state holds, every fault plans within the blast radius, every guardrail evaluates; else PreflightFailed."""
        problems: list[str] = []
        for p in self.campaign.steady_state:
            try:
                v = self.ops.evaluate(p)
                if not v.ok:
                    problems.append(f"steady_state {p.name!r} out of tolerance: {v.detail or v.value!r}")
            except Exception as e:  # noqa: BLE001 - not evaluable is a preflight failure
                problems.append(f"steady_state {p.name!r} could not be evaluated: {e}")
        plans: dict[str, list[Injection]] = {}
        try:
            plans = self.plan_all()
        except GamedayError as e:
            problems.append(f"plan: {e}")
        watcher = GuardrailWatcher(self.campaign.guardrails, self.ops.evaluate)
        for g in self.campaign.guardrails:
            reason = watcher.check_once(g)
            if reason is not None:
                problems.append(f"guardrail {g.name!r} {reason.reason}")
        self.recorder.event("preflight", "ok" if not problems else "; ".join(problems), problems=problems)
        if problems:
            raise PreflightFailed("preflight failed, nothing was injected:\n  " + "\n  ".join(problems))
        return plans

    # -- windows ----------------------------------------------------------------------------------
    def _wait(self, seconds: float, abort: threading.Event | None = None) -> bool:
        """Wait up to ``seconds``; True when cut short by an abort or cancellation."""
        deadline = now().timestamp() + seconds
        while True:
            left = deadline - now().timestamp()
            if left <= 0:
                return False
            if self.cancel.is_set() or (abort is not None and abort.is_set()):
                return True
            (abort or self.cancel).wait(min(left, 0.25))

    def window(self, kind: str, seconds: float, stage: str | None = None) -> None:
        """Wait out a quiet window (baseline, recovery, cooldown, final recovery) and record it."""
        if seconds <= 0:
            return
        start = now()
        starts: dict[str, EventKind] = {
            "baseline": "baseline-start",
            "recovery": "recovery-start",
            "cooldown": "cooldown",
        }
        evt = starts.get(kind)
        if evt:
            self.recorder.event(evt, f"{kind} for {seconds:g}s", stage=stage, seconds=seconds)
        self._wait(seconds)
        self.recorder.window(kind, start, now(), stage)
        if kind == "baseline":
            self.recorder.event("baseline-end", stage=stage)

    # -- stages -----------------------------------------------------------------------------------
    def _rollback(self, items: list[_Active], stage: str) -> None:
        """Roll back ``items`` in reverse order; every one is tried even if an earlier one fails."""
        pending: BaseException | None = None
        for item in reversed(items):
            inj, fo = item.injection, item.outcome
            try:
                self._ops().rollback(inj, self.ctx)
                fo.rollback_ok, fo.rolled_back_at = True, now()
                self.recorder.event("rollback", inj.summary, stage=stage, fault=inj.fault_id)
                self._settle(inj, "rolled-back", "")
            except Exception as e:  # noqa: BLE001 - recorded; reconcile retries from the ledger
                fo.rollback_ok, fo.rollback_error = False, f"{type(e).__name__}: {e}"
                self.recorder.event("rollback-failed", fo.rollback_error, stage=stage, fault=inj.fault_id)
                self.recorder.rollback_problem(f"{stage}/{inj.fault_id}: {fo.rollback_error}")
                self._settle(inj, "rollback-failed", fo.rollback_error)
            except BaseException as e:  # noqa: BLE001 - finish the other rollbacks first, then re-raise
                pending = pending or e
                fo.rollback_ok, fo.rollback_error = False, f"interrupted: {type(e).__name__}"
            if item in self.active:
                self.active.remove(item)
        if pending is not None:
            raise pending

    def _ops(self) -> Ops:
        """The operations to use now: plain ones while unwinding from a cancellation."""
        return self.ops.plain if self.unwinding and self.ops.plain is not None else self.ops

    def _settle(self, inj: Injection, state: str, error: str) -> None:
        try:
            self._ops().settle(inj, state, error)
        except Exception as e:  # noqa: BLE001 - the ledger keeps the entry; reconcile settles it
            self.recorder.event("error", f"ledger update failed: {e}", stage=inj.stage, fault=inj.fault_id)

    def _renew_all(self) -> None:
        for item in list(self.active):
            self.ops.renew(item.injection, self.ctx)

    def _approval(self, stage: Stage) -> Approval | None:
        if stage.approval != "required":
            return None
        decision = self.approve(stage)
        self.recorder.event(
            "approval",
            f"{decision.decision}: {decision.comment}".rstrip(": "),
            stage=stage.name,
            decision=decision.decision,
            by=decision.by,
        )
        return decision

    def _inject_stage(self, stage: Stage, faults: list[FaultOutcome], mine: list[_Active]) -> None:
        for spec, fid in zip(stage.faults, self.campaign.fault_ids(stage)):
            fo = FaultOutcome(id=fid, kind=spec.kind, stage=stage.name)
            faults.append(fo)
            inj = self.ops.plan(spec, self.ctx, self.run_id, stage.name, fid)
            fo.plan = inj.model_dump(mode="json")
            self.ops.record(inj)
            self.recorder.event("ledger", inj.summary, stage=stage.name, fault=fid)
            item = _Active(inj, fo)
            self.active.append(item)  # the undo is registered before the change
            mine.append(item)
            item.injection = inj = self.ops.inject(inj, self.ctx)
            fo.injected_at = now()
            self.ops.settle(inj, "applied", "")  # re-written with any undo state captured while injecting
            self.recorder.event("inject", inj.summary, stage=stage.name, fault=fid, targets=inj.targets)
            try:
                ev = self.ops.verify(inj, self.ctx)
                fo.verified, fo.evidence = ev.landed, {"summary": ev.summary, **ev.details}
                self.recorder.event(
                    "verified" if ev.landed else "verify-failed", ev.summary, stage=stage.name, fault=fid
                )
            except Exception as e:  # noqa: BLE001 - recorded as unverified; the stage goes on
                fo.verified, fo.evidence = False, {"error": f"{type(e).__name__}: {e}"}
                self.recorder.event("verify-failed", str(e), stage=stage.name, fault=fid)

    def run_stage(self, stage: Stage) -> StageOutcome:
        """Approval → plan/ledger/inject/verify each fault → observe under guardrails → rollback → recovery."""
        started = now()
        approval = self._approval(stage)
        if approval is not None and approval.decision in ("skip", "abort", "timeout"):
            decided: StageStatus = "skipped" if approval.decision == "skip" else "aborted"
            self.operator_abort = approval.decision != "skip"
            out = StageOutcome(
                name=stage.name,
                status=decided,
                reason=f"approval: {approval.decision}",
                approval=approval,
                started_at=started,
                ended_at=now(),
            )
            self.recorder.stage_outcome(out)
            self.recorder.event("stage-end", decided, stage=stage.name, status=decided)
            return out
        self.recorder.event("stage-start", stage.description, stage=stage.name, faults=len(stage.faults))
        faults: list[FaultOutcome] = []
        mine: list[_Active] = []
        status: StageStatus = "completed"
        reason = ""
        fault_start = now()
        try:
            self._inject_stage(stage, faults, mine)
            fault_start = min((f.injected_at for f in faults if f.injected_at), default=now())

            def breach(r: AbortReason) -> None:
                self.recorder.event(
                    "guardrail-breach",
                    r.reason,
                    stage=stage.name,
                    guardrail=r.guardrail,
                    evaluable=r.evaluable,
                )

            renew = self._renew_all if any(i.injection.kind in _LEASED for i in mine) else None
            watcher = GuardrailWatcher(
                self.campaign.guardrails, self.ops.evaluate, breach, renew, self.renew_every
            )
            with watcher:
                self._wait(stage.observe.total_seconds(), watcher.abort)
            if watcher.reason is not None:
                status, reason = "aborted", f"guardrail {watcher.reason.guardrail!r}: {watcher.reason.reason}"
                self.recorder.event("abort", reason, stage=stage.name)
            elif self.cancel.is_set():
                status, reason = "aborted", "cancelled"
        except Exception as e:  # noqa: BLE001 - the stage fails, rollback still runs, the record says why
            status, reason = "failed", f"{type(e).__name__}: {e}"
            self.recorder.event("error", reason, stage=stage.name)
        except BaseException as e:
            status, reason, self.unwinding = "aborted", f"interrupted: {type(e).__name__}", True
            raise
        finally:
            fault_end = now()
            try:
                self._rollback(mine, stage.name)
            finally:
                self.recorder.window("fault", fault_start, fault_end, stage.name)
                out = StageOutcome(
                    name=stage.name,
                    status=status,
                    reason=reason,
                    approval=approval,
                    started_at=started,
                    ended_at=now(),
                    faults=faults,
                )
                self.recorder.stage_outcome(out)
        self.window("recovery", stage.recovery.total_seconds(), stage.name)
        self.recorder.event("stage-end", f"{status} {reason}".strip(), stage=stage.name, status=status)
        return out

    def run(self) -> str:
        """Preflight, baseline, every stage, final recovery; returns completed | aborted | failed | cancelled."""
        c = self.campaign
        self.recorder.event(
            "campaign-start", c.description, campaign=c.name, stages=[s.name for s in c.stages]
        )
        self.preflight()
        self.window("baseline", c.baseline.total_seconds())
        for i, stage in enumerate(c.stages):
            if self.cancel.is_set():
                self.status = "cancelled"
                break
            out = self.run_stage(stage)
            if out.status == "failed":
                self.status = "failed"
                break
            if out.status == "aborted":
                self.status = "aborted"
                if self.operator_abort or not c.continue_on_abort:
                    break
            if i < len(c.stages) - 1:
                self.window("cooldown", c.cooldown.total_seconds(), stage.name)
        self.window("final-recovery", c.final_recovery.total_seconds())
        return self.status

    def rollback_all(self, unwinding: bool = False) -> None:
        """Undo every injection still active (the flow's ``finally`` calls this)."""
        self.unwinding = self.unwinding or unwinding
        if self.active:
            self._rollback(list(self.active), self.active[-1].injection.stage)


_LEASED = frozenset({"gpu-xid", "gpu-degrade", "nccl-partition"})
"""Fault kinds held by node agents under a lease the runner must renew."""
