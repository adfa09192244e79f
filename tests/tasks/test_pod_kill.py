"""pod-kill against the lab: the chosen pods die, their controller restores the count, blast radius holds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from blueprints.campaign import BlastRadius
from blueprints.faults import PodKill
from tasks.cluster import Cluster
from tasks.errors import BlastRadiusExceeded
from tasks.faults.base import FaultContext
from tasks.faults.pod_kill import PodKillFault
from tests.tasks.helpers import poll

FAULT = PodKillFault()
SEL = {"namespaces": ["inference"], "label_selector": {"app": "model-server"}}


def _running(c: Cluster) -> set[str]:
    return {p.metadata.name for p in c.list_pods(["inference"], {"app": "model-server"})
            if p.status.phase == "Running" and not p.metadata.deletion_timestamp}


def test_kill_one_pod_and_wait_for_the_controller(lab_admin: Cluster, lab_ctx: FaultContext) -> None:
    """One model-server pod is deleted (evidence names it); rollback waits until the count is back."""
    before = poll(lambda: _running(lab_admin) if len(_running(lab_admin)) == 3 else None, timeout=60)
    inj = FAULT.plan(PodKill(selector={**SEL, "mode": "one"}), lab_ctx, run_id="pk", stage="s",  # type: ignore[arg-type]
                     fault_id="kill")
    victim = inj.targets[0].split("/")[-1]
    assert victim in before and len(inj.targets) == 1
    inj = FAULT.inject(inj, lab_ctx)
    evidence = FAULT.verify(inj, lab_ctx)
    assert evidence.landed and evidence.details["deleted"] == [f"inference/{victim}"]
    logs: list[str] = []
    FAULT.rollback(inj, replace(lab_ctx, log=logs.append))
    after = _running(lab_admin)
    assert len(after) == len(before) and victim not in after
    assert logs == ["pod-kill kill: controllers restored the running pods"]
    FAULT.rollback(inj, lab_ctx)  # twice is harmless


def test_blast_radius_refuses_too_many_pods(lab_ctx: FaultContext) -> None:
    """Killing every model-server pod exceeds max_pods 1: refused at plan time, nothing deleted."""
    ctx = FaultContext(cluster=lab_ctx.cluster, run_id="pk2", blast_radius=BlastRadius(max_pods=1))
    with pytest.raises(BlastRadiusExceeded, match="max_pods 1"):
        FAULT.plan(PodKill(selector={**SEL, "mode": "all"}), ctx, run_id="pk2", stage="s",  # type: ignore[arg-type]
                   fault_id="kill")


def test_planned_only_rollback_deletes_nothing(lab_admin: Cluster, lab_ctx: FaultContext) -> None:
    """Rolling back an injection that never ran deletes nothing."""
    before = poll(lambda: _running(lab_admin) if len(_running(lab_admin)) == 3 else None, timeout=60)
    inj = FAULT.plan(PodKill(selector={**SEL, "mode": "all"}), lab_ctx, run_id="pk3", stage="s",  # type: ignore[arg-type]
                     fault_id="kill")
    FAULT.rollback(inj, lab_ctx)
    assert _running(lab_admin) == before


