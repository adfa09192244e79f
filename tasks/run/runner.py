"""The campaign runner in plain Python: plan and preflight, baseline, setup, stages, recovery, cooldown, rollback.

No Prefect here: ``flows/campaign.py`` hands in :class:`~tasks.run.ops.Ops` whose members are Prefect task
wrappers (``tasks/steps.py``); tests hand in the plain functions. :class:`CampaignRunner` owns the run's state
and its sequencing; each stage is a :class:`~tasks.run.stage.StageRun` given only what a stage needs. Every
injection is registered in ``active`` before it is applied; every stage rolls back in ``finally`` in reverse
order, and :meth:`CampaignRunner.rollback_all` undoes anything still active (the flow calls it in its own
``finally``).

Preflight fails closed: steady state out of tolerance or not evaluable, an error budget with too little left (or
unreadable), a fault that does not plan within its blast radius, or a guardrail already breached all raise
:class:`~tasks.errors.PreflightFailed` before anything is injected. Expectations that could not be refuted
(blueprints/refutability.py) are recorded as warnings; they do not block the run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from blueprints.budget import ErrorBudget
from blueprints.campaign import SETUP, Campaign, Stage
from blueprints.record import FaultOutcome, StageOutcome
from blueprints.refutability import weak_expectations
from tasks.bands import learn_bands
from tasks.errors import GamedayError, PreflightFailed
from tasks.faults.base import FaultContext, Injection
from tasks.faults.selection import check_stage_blast_radius
from tasks.run.budget import consumption, gate
from tasks.run.guardrails import GuardrailWatcher
from tasks.run.ops import Active, Approver, Ops, auto_approve, rollback
from tasks.run.recorder import Recorder, now
from tasks.run.stage import StageRun, quiet_window


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
    active: list[Active] = field(default_factory=list)
    status: str = "completed"
    unwinding: bool = False
    operator_abort: bool = False
    halted: bool = False
    """A halt guardrail tripped: no further stage runs, whatever ``continue_on_abort`` says."""
    plans: dict[str, list[Injection]] = field(default_factory=dict)
    """What preflight planned, per stage: each stage's faults are held to it (a difference is noted)."""

    @property
    def run_id(self) -> str:
        """This run's id."""
        return self.recorder.run_id

    def plan_all(self) -> dict[str, list[Injection]]:
        """Plan every fault of every stage (reads only); raises BlastRadiusExceeded etc."""
        return plan_all(self.campaign, self.ctx, self.ops, self.run_id)

    def preflight(self) -> dict[str, list[Injection]]:
        """Steady state holds, every fault plans within the blast radius, every guardrail evaluates; else PreflightFailed."""
        return preflight(self.campaign, self.ctx, self.ops, self.recorder)

    def window(self, kind: str, seconds: float, stage: str | None = None,
               abort: threading.Event | None = None) -> None:
        """Wait out a quiet window (baseline, recovery, cooldown, final recovery) and record it."""
        quiet_window(self.recorder, self.cancel, kind, seconds, stage, abort)

    def stage_run(self, stage: Stage) -> StageRun:
        """A stage given what it needs of this run (the active set it registers undos in is the run's)."""
        return StageRun(stage, self.campaign, self.ctx, self.ops, self.recorder, self.active, self.cancel,
                        self.approve, self.renew_every, unwinding=self.unwinding)

    def run_stage(self, stage: Stage) -> StageOutcome:
        """Approval → plan/ledger/inject/verify each fault → observe under guardrails → rollback → recovery."""
        run = self.stage_run(stage)
        try:
            return run.run()
        finally:
            self.unwinding = self.unwinding or run.unwinding
            self.operator_abort = self.operator_abort or run.operator_abort
            self.halted = self.halted or run.halted

    def apply_setup(self, setup: Stage, held: list[Active]) -> bool:
        """Apply the campaign's setup (each change in the ledger first, then verified); False, with the run
        failed, when a change raised or did not land: a fix that is not in place proves nothing."""
        faults: list[FaultOutcome] = []
        self.recorder.event("note", f"setup: applying {len(setup.faults)} change(s) held for the whole run", stage=SETUP)
        problem = ""
        try:
            self.stage_run(setup).inject(faults, held)
            problem = ", ".join(f"{f.id!r} did not land" for f in faults if not f.verified)
        except Exception as e:  # noqa: BLE001 - recorded; the run fails and what was applied is undone
            problem = f"{type(e).__name__}: {e}"
        finally:
            self.recorder.setup_outcome(faults)
        if problem:
            self.status = "failed"
            self.recorder.event("error", f"setup failed, no stage ran: {problem}", stage=SETUP)
            return False
        return True

    def run(self) -> str:
        """Preflight, setup, baseline, every stage, final recovery, setup undone; returns completed | aborted |
        failed | cancelled."""
        c = self.campaign
        self.recorder.event(
            "campaign-start", c.description, campaign=c.name, stages=[s.name for s in c.stages],
            selection_seed=self.ctx.selection_seed or self.run_id,
        )
        self.plans = self.preflight()
        self.ctx.committed = {f"{stage}/{i.fault_id}": list(i.targets) for stage, planned in self.plans.items()
                              for i in planned}
        setup = c.setup_stage()
        held: list[Active] = []
        try:
            if setup is not None and not self.apply_setup(setup, held):
                return self.status
            self.window("baseline", c.baseline.total_seconds())
            self.learn_bands()
            self.run_stages()
            self.window("final-recovery", c.final_recovery.total_seconds())
        finally:
            if held and setup is not None:
                self.stage_run(setup).rollback(held)
            if c.preflight.error_budget is not None:
                self.record_budget_consumed(c.preflight.error_budget)
        return self.status

    def record_budget_consumed(self, spec: ErrorBudget) -> None:
        """Record the share of the SLO window's error budget this run consumed (from its start to now)."""
        seconds = (now() - self.recorder.started_at).total_seconds()
        figures = consumption(spec, self.ops.plain.evaluate if self.ops.plain else self.ops.evaluate, seconds)
        message = (f"the run consumed {figures['consumed']:.3%} of the error budget (SLI {figures['mean_sli']:.4%} "
                   f"over its {seconds:.0f} s)" if "consumed" in figures
                   else f"what the run consumed could not be read: {figures['error']}")
        self.recorder.event("error-budget", message, **figures)

    def learn_bands(self) -> None:
        """Narrow each anomaly guardrail (``band``) to what its query did during the baseline window, noting it."""
        if not any(g.band for g in self.campaign.guardrails):
            return
        window = next((w for w in reversed(self.recorder.windows) if w.kind == "baseline"), None)
        guardrails, learnt = learn_bands(self.campaign.guardrails, self.ctx.prometheus_url,
                                         window.start if window else None, window.end if window else None)
        self.campaign = self.campaign.model_copy(update={"guardrails": guardrails})
        for band in learnt:
            self.recorder.event("note", f"guardrail {band.guardrail!r}: {band.note}", guardrail=band.guardrail,
                                band=band.model_dump(mode="json"))

    def run_stages(self) -> None:
        """Every stage in order, with cooldowns between; stops at a failure, an abort (unless the blueprint goes
        on after one) or a cancellation, setting ``status``."""
        c = self.campaign
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
                if self.operator_abort or self.halted or not c.continue_on_abort:
                    break
            if i < len(c.stages) - 1:
                self.window("cooldown", c.cooldown.total_seconds(), stage.name)

    def rollback_all(self, unwinding: bool = False) -> None:
        """Undo every injection still active (the flow's ``finally`` calls this; ``unwinding`` when the run was
        interrupted: plain operations, no orchestration)."""
        self.unwinding = self.unwinding or unwinding
        if self.active:
            rollback(list(self.active), self.active, self.ops.for_unwinding(self.unwinding), self.ctx, self.recorder,
                     self.active[-1].injection.stage)


def plan_all(campaign: Campaign, ctx: FaultContext, ops: Ops, run_id: str) -> dict[str, list[Injection]]:
    """Plan every change of the setup (key 'setup') and every fault of every stage (reads only); raises
    BlastRadiusExceeded etc."""
    plans: dict[str, list[Injection]] = {}
    setup = campaign.setup_stage()
    for stage in ([setup] if setup is not None else []) + campaign.stages:
        ids = campaign.fault_ids(stage)
        plans[stage.name] = [ops.plan(f, ctx, run_id, stage.name, i) for f, i in zip(stage.faults, ids)]
        # a stage's faults are in place together, with the setup's changes held through every stage
        held = plans.get("setup", []) if setup is not None and stage is not setup else []
        check_stage_blast_radius(ctx, stage.name, held + plans[stage.name])
    return plans


def preflight(
    campaign: Campaign, ctx: FaultContext, ops: Ops, recorder: Recorder
) -> dict[str, list[Injection]]:
    """Steady state holds, the error budget has enough left, faults plan within blast radius, guardrails evaluate;
    else PreflightFailed."""
    problems: list[str] = []
    for p in campaign.steady_state:
        try:
            v = ops.evaluate(p)
            if not v.ok:
                problems.append(f"steady_state {p.name!r} out of tolerance: {v.detail or v.value!r}")
        except Exception as e:  # noqa: BLE001 - not evaluable is a preflight failure
            problems.append(f"steady_state {p.name!r} could not be evaluated: {e}")
    budget = campaign.preflight.error_budget
    if budget is not None:
        problem, figures = gate(budget, ops.evaluate)
        recorder.event("error-budget", problem or (f"{figures['remaining']:.1%} of the error budget remains "
                                                   f"(at least {budget.min_remaining:.0%} needed)"), **figures)
        if problem:
            problems.append(problem)
    plans: dict[str, list[Injection]] = {}
    try:
        plans = plan_all(campaign, ctx, ops, recorder.run_id)
    except GamedayError as e:
        problems.append(f"plan: {e}")
    watcher = GuardrailWatcher(campaign.guardrails, ops.evaluate)
    for g in campaign.guardrails:
        reason = watcher.check_once(g)
        if reason is not None and g.severity == "warn":
            recorder.event("note", f"guardrail {g.name!r} (warn) is already breached: {reason.reason}")
        elif reason is not None:
            problems.append(f"guardrail {g.name!r} {reason.reason}")
    warnings = weak_expectations(campaign)
    for w in warnings:
        recorder.event("note", f"refutability warning: {w}")
    recorder.event("preflight", "ok" if not problems else "; ".join(problems), problems=problems,
                   refutability_warnings=warnings)
    if problems:
        raise PreflightFailed("preflight failed, nothing was injected:\n  " + "\n  ".join(problems))
    return plans
