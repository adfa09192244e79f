"""A campaign's plan as text: resolved targets, what will change, and how each change is undone.

The one place the plan is made and rendered: ``gameday plan``, ``gameday run --dry-run`` and a dry-run flow
all print :func:`plan_text`.
"""

from __future__ import annotations

from blueprints.campaign import SETUP, Campaign
from blueprints.common import format_duration
from tasks.faults.base import FaultContext, Injection
from tasks.run.ops import Ops


def plan_text(campaign: Campaign, ctx: FaultContext, ops: Ops, seed: str) -> str:
    """Plan every stage's faults as the run would (reading only) and render them with the selection seed."""
    from tasks.run.recorder import Recorder
    from tasks.run.runner import CampaignRunner

    runner = CampaignRunner(campaign, ctx, ops, Recorder(ctx.run_id))
    return render_plan(campaign, runner.plan_all(), seed)


def render_plan(campaign: Campaign, plans: dict[str, list[Injection]], seed: str = "") -> str:
    """The plan of every stage, in words, and the seed its targets were picked with."""
    t = campaign.target
    radius = ", ".join(f"{k}={v}" for k, v in t.blast_radius.model_dump().items() if v is not None)
    out = [
        f"campaign {campaign.name} (owner {campaign.owner}) on target {t.cluster}",
        f"  namespaces: {', '.join(t.namespaces)}; blast radius: {radius}",
        f"  baseline {format_duration(campaign.baseline)}, {len(campaign.stages)} stage(s), "
        f"final recovery {format_duration(campaign.final_recovery)}",
    ]
    if campaign.setup:
        out += ["", "setup (before the baseline, held for the whole run, undone after the final recovery):"]
        out += _injections(plans.get(SETUP, []), "change")
    for stage in campaign.stages:
        out.append("")
        approval = " [approval required]" if stage.approval == "required" else ""
        out.append(
            f"stage {stage.name}: observe {format_duration(stage.observe)}, "
            f"recovery {format_duration(stage.recovery)}{approval}"
        )
        out += _injections(plans.get(stage.name, []), "fault")
    out.append("")
    if seed:
        out.append(f"selection seed {seed}: a run with --seed {seed} hits these targets (each stage keeps them "
                   "while they exist)")
    out.append("nothing was changed (plan only)")
    return "\n".join(out)


def _injections(plans: list[Injection], noun: str) -> list[str]:
    """Each planned injection's lines: summary, targets, every change and its undo."""
    out: list[str] = []
    for inj in plans:
        out.append(f"  {noun} {inj.fault_id} ({inj.kind}): {inj.summary}")
        if inj.targets:
            out.append(f"    targets: {', '.join(inj.targets)}")
        for ch in inj.changes:
            detail = f" ({ch.detail})" if ch.detail else ""
            out.append(f"    {ch.action} {ch.object}{detail}")
            out.append(f"      undo: {ch.undo}")
    return out
