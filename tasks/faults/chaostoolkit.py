"""chaostoolkit: any Chaos Toolkit action as a fault, run through chaoslib, with optional CTK rollback and probe.

Blast radius: whatever the action does (gameday cannot see inside it, so it counts as touching nothing;
the blueprint's author owns it). Undo: the spec's CTK ``rollback`` activity, if any, run by rollback;
without one, nothing is undone. Any exception from extension code becomes :class:`ActivityFailed`.
chaoslib's experiment runner needs the main thread; single activities (used here) do not.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from blueprints.faults import ChaosToolkitFault
from tasks.errors import ActivityFailed
from tasks.faults.base import Change, Evidence, FaultContext, Injection, Undo, undo_of, with_undo
from tasks.faults.selection import check_blast_radius, now, touched_by
from tasks.probes.chaostoolkit import CtkActivity, run_activity


def _activity(kind: str, name: str, body: dict[str, Any]) -> CtkActivity:
    """The blueprint's activity ``body`` as chaoslib runs it: of type ``kind``, named ``name`` unless it names
    itself."""
    return CtkActivity.model_validate({"type": kind, "name": body.get("name", name),
                                       **{k: v for k, v in body.items() if k != "name"}})


class ChaosToolkitUndo(Undo):
    """the spec's CTK rollback activity, if any, run by rollback; without one, nothing is undone"""

    action: CtkActivity
    rollback: CtkActivity | None
    verify: CtkActivity | None
    configuration: dict[str, Any]
    """CTK configuration, as the blueprint gives it to chaoslib."""
    secrets: dict[str, Any]
    """CTK secrets, as the blueprint gives them to chaoslib."""
    action_result: str | None = None
    """What the action returned, as text (set by inject)."""


class ChaosToolkitBehaviour:
    """Behaviour of the chaostoolkit kind."""

    kind: ClassVar[str] = "chaostoolkit"
    blast_radius: ClassVar[str] = (
        "whatever the action does (gameday cannot see inside it, so it counts as touching nothing; the "
        "blueprint's author owns it)"
    )
    undo: ClassVar[type[BaseModel]] = ChaosToolkitUndo
    leased: ClassVar[bool] = False

    def plan(self, spec: ChaosToolkitFault, ctx: FaultContext, *, run_id: str, stage: str,
             fault_id: str) -> Injection:
        """Describe the action and its rollback; nothing is read from the cluster."""
        action = _activity("action", f"{fault_id}-action", spec.action)
        rollback = _activity("action", f"{fault_id}-rollback", spec.rollback) if spec.rollback else None
        probe = _activity("probe", f"{fault_id}-verify", spec.verify) if spec.verify else None
        found = touched_by(spec.touches)
        check_blast_radius(ctx, f"chaostoolkit action {action.name!r}", nodes=len(found["nodes"]),
                           pods=len(found["pods"]), gpus=len(found["gpus"]))
        undo = ChaosToolkitUndo(action=action, rollback=rollback, verify=probe, configuration=spec.configuration,
                                secrets=spec.secrets)
        return Injection(run_id=run_id, stage=stage, fault_id=fault_id, kind=self.kind, targets=list(spec.touches),
                         spec=spec.model_dump(mode="json"), summary=f"chaostoolkit action {action.name!r}",
                         changes=[Change(action="local", object=f"ctk {action.provider.type} activity",
                                         detail=action.name,
                                         undo=f"ctk rollback {rollback.name!r}" if rollback is not None
                                         else "none declared")],
                         undo=undo.model_dump(mode="json"), cluster_scoped_ledger=False, planned_at=now())

    def inject(self, injection: Injection, ctx: FaultContext) -> Injection:
        """Run the action; what it returned is kept (as text) for the evidence."""
        u = undo_of(injection, ChaosToolkitUndo)
        result = run_activity(u.action, u.configuration, u.secrets)
        return with_undo(injection, u.model_copy(update={"action_result": repr(result)[:500]}))

    def verify(self, injection: Injection, ctx: FaultContext) -> Evidence:
        """Run the verify probe if declared (landed when it runs without error and returns a truthy value)."""
        u = undo_of(injection, ChaosToolkitUndo)
        action_result = u.action_result
        if u.verify is None:
            return Evidence(landed=True, summary="action ran; no verify probe declared",
                            details={"action_result": action_result})
        try:
            value = run_activity(u.verify, u.configuration, u.secrets)
        except ActivityFailed as e:
            return Evidence(landed=False, summary=str(e))
        return Evidence(landed=bool(value), summary=f"verify probe returned {value!r}"[:300],
                        details={"value": repr(value)[:500], "action_result": action_result})

    def rollback(self, injection: Injection, ctx: FaultContext) -> None:
        """Run the declared CTK rollback (ActivityFailed if it fails); nothing when none is declared."""
        u = undo_of(injection, ChaosToolkitUndo)
        if u.rollback is not None:
            run_activity(u.rollback, u.configuration, u.secrets)

    def renew(self, injection: Injection, ctx: FaultContext) -> None:
        """Nothing to renew."""
