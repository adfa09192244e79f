"""node-cordon against the lab: rollback uncordons exactly the nodes it cordoned; drain evicts pods."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from blueprints.campaign import BlastRadius
from blueprints.faults import NodeCordon
from tasks.cluster import Cluster
from tasks.errors import BlastRadiusExceeded
from tasks.faults.base import FaultContext
from tasks.faults.node_cordon import NodeCordonFault, drainable

FAULT = NodeCordonFault()


def _flags(c: Cluster) -> dict[str, bool]:
    return {n.metadata.name: bool(n.spec.unschedulable) for n in c.list_nodes()}


@pytest.fixture
def node2_precordoned(lab_admin: Cluster) -> Iterator[None]:
    """lab-node-2 cordoned by someone else before the fault; uncordoned again afterwards."""
    lab_admin.set_unschedulable("lab-node-2", True)
    try:
        yield
    finally:
        lab_admin.set_unschedulable("lab-node-2", False)


def test_rollback_uncordons_only_what_it_cordoned(node2_precordoned: None, lab_admin: Cluster,
                                                  lab_ctx: FaultContext) -> None:
    """With lab-node-2 already cordoned, the fault cordons lab-node-0/1 and rollback leaves lab-node-2 cordoned."""
    before = _flags(lab_admin)
    inj = FAULT.plan(NodeCordon(selector={"mode": "all"}), lab_ctx, run_id="nc", stage="s",  # type: ignore[arg-type]
                     fault_id="cordon")
    assert inj.undo["cordon"] == ["lab-node-0", "lab-node-1"] and inj.undo["already_cordoned"] == ["lab-node-2"]
    inj = FAULT.inject(inj, lab_ctx)
    evidence = FAULT.verify(inj, lab_ctx)
    assert evidence.landed and all(evidence.details["unschedulable"].values())
    FAULT.rollback(inj, lab_ctx)
    assert _flags(lab_admin) == before == {"lab-node-0": False, "lab-node-1": False, "lab-node-2": True}
    FAULT.rollback(inj, lab_ctx)
    assert _flags(lab_admin) == before


def test_drain_evicts_the_pods_of_a_node(lab_admin: Cluster, lab_ctx: FaultContext) -> None:
    """Draining a node with pods evicts them through the eviction API; rollback uncordons it."""
    busy = max(("lab-node-0", "lab-node-1", "lab-node-2"), key=lambda n: len(drainable(lab_ctx, n)))
    assert drainable(lab_ctx, busy)
    inj = FAULT.plan(NodeCordon(selector={"names": [busy], "mode": "all"}, drain=True), lab_ctx,  # type: ignore[arg-type]
                     run_id="nc2", stage="s", fault_id="drain")
    inj = FAULT.inject(inj, lab_ctx)
    try:
        evidence = FAULT.verify(inj, lab_ctx)
    finally:
        FAULT.rollback(inj, lab_ctx)
    assert evidence.landed, evidence.summary
    assert evidence.details["evicted"] and evidence.details["pods_left"] == {busy: 0}
    assert _flags(lab_admin)[busy] is False


def test_blast_radius_percent_refuses_half_the_nodes(lab_ctx: FaultContext) -> None:
    """Two of three nodes is 66% > max_nodes_percent 50: refused at plan time."""
    ctx = FaultContext(cluster=lab_ctx.cluster, run_id="nc3", blast_radius=BlastRadius(max_nodes_percent=50))
    with pytest.raises(BlastRadiusExceeded, match="max_nodes_percent"):
        FAULT.plan(NodeCordon(selector={"mode": "fixed", "value": 2}), ctx, run_id="nc3", stage="s",  # type: ignore[arg-type]
                   fault_id="c")


def test_rollback_of_a_half_applied_cordon(lab_admin: Cluster, lab_ctx: FaultContext) -> None:
    """If the runner died after cordoning only the first of two nodes, rollback uncordons what is cordoned."""
    before = _flags(lab_admin)
    inj = FAULT.plan(NodeCordon(selector={"names": ["lab-node-0", "lab-node-1"], "mode": "all"}), lab_ctx,  # type: ignore[arg-type]
                     run_id="nc4", stage="s", fault_id="half")
    lab_admin.set_unschedulable("lab-node-0", True)  # what inject had done before the crash
    FAULT.rollback(inj, lab_ctx)
    assert _flags(lab_admin) == before


def test_a_stage_of_faults_each_within_the_radius_is_refused_together(lab_ctx: FaultContext, tmp_path: Any) -> None:
    """Two node-cordon faults of one stage, each cordoning one lab node under max_nodes 1, are refused at plan time
    as a stage (2 nodes at once), with nothing cordoned; the same two faults in two stages plan."""
    from blueprints.campaign import Campaign
    from tasks.faults import REGISTRY
    from tasks.run.connect import plain_ops
    from tasks.run.runner import plan_all

    def campaign(stages: list[list[str]]) -> Campaign:
        return Campaign.model_validate({
            "name": "two-cordons", "owner": "tests",
            "hypothesis": {"belief": "b", "expectations": ["x >= 0 during fault"]},
            "target": {"cluster": "lab", "namespaces": ["kube-system"], "blast_radius": {"max_nodes": 1}},
            "observables": [{"name": "x", "query": "vector(1)"}], "baseline": "0s",
            "stages": [{"name": f"s{i}", "observe": "1s", "recovery": "0s", "faults": [
                {"kind": "node-cordon", "name": n, "selector": {"names": [n], "mode": "all"}} for n in nodes]}
                for i, nodes in enumerate(stages)]})

    ctx = FaultContext(cluster=lab_ctx.cluster, run_id="radius", blast_radius=BlastRadius(max_nodes=1),
                       settings=lab_ctx.settings, log=lambda m: None)
    ops = plain_ops(REGISTRY, None, lambda p: None)  # type: ignore[arg-type,return-value]
    before = _flags(lab_ctx.cluster)
    with pytest.raises(BlastRadiusExceeded, match=r"stage 's0' \(2 faults together\)"):
        plan_all(campaign([["lab-node-0", "lab-node-1"]]), ctx, ops, "radius")
    assert _flags(lab_ctx.cluster) == before
    plans = plan_all(campaign([["lab-node-0"], ["lab-node-1"]]), ctx, ops, "radius")
    assert [i.targets for i in plans["s0"] + plans["s1"]] == [["node/lab-node-0"], ["node/lab-node-1"]]
