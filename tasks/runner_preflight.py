"""The runner's first phase: plan every fault (reads only) and check the target is fit to be hurt.

Preflight fails closed: steady state out of tolerance or not evaluable, an error budget with too little left (or
unreadable), a fault that does not plan within its blast radius, or a guardrail already breached all raise :class:`~tasks.errors.PreflightFailed` before
anything is injected. Expectations that could not be refuted (blueprints/refutability.py) are recorded as
warnings; they do not block the run.
"""

from __future__ import annotations

from blueprints.campaign import Campaign
from blueprints.refutability import weak_expectations
from tasks.budget import gate
from tasks.errors import GamedayError, PreflightFailed
from tasks.faults.base import FaultContext, Injection
from tasks.faults.selection import check_stage_blast_radius
from tasks.runner_ops import Ops
from tasks.runner_record import Recorder
from tasks.runner_watch import GuardrailWatcher


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
