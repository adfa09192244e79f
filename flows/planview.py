"""Rendering a campaign's plan as text: resolved targets, what will change, and how each change is undone."""

from __future__ import annotations

from blueprints.campaign import Campaign
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
    for stage in campaign.stages:
        out.append("")
        approval = " [approval required]" if stage.approval == "required" else ""
        out.append(
            f"stage {stage.name}: observe {format_duration(stage.observe)}, "
            f"recovery {format_duration(stage.recovery)}{approval}"
        )
        for inj in plans.get(stage.name, []):
            out.append(f"  fault {inj.fault_id} ({inj.kind}): {inj.summary}")
            if inj.targets:
                out.append(f"    targets: {', '.join(inj.targets)}")
            for ch in inj.changes:
                detail = f" ({ch.detail})" if ch.detail else ""
                out.append(f"    {ch.action} {ch.object}{detail}")
                out.append(f"      undo: {ch.undo}")
    out.append("")
    out.append("nothing was changed (plan only)")
    return "\n".join(out)
