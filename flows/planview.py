"""Rendering a campaign's plan as text: resolved targets, what will change, and how each change is undone."""

from __future__ import annotations

from blueprints.campaign import SETUP, Campaign
from blueprints.common import format_duration
from tasks.faults.base import Injection


def render_plan(campaign: Campaign, plans: dict[str, list[Injection]]) -> str:
    """The plan of every stage, in words (what --dry-run and `gameday plan` print)."""
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
