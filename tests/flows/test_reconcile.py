"""flows/reconcile.py: reconciling one target, all runs or only one run (what the cancellation hook uses)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from blueprints.faults import NodeCordon, Noop
from flows.reconcile import reconcile_target
from tasks.cluster import Cluster
from tasks.faults.base import FaultContext
from tasks.faults.node_cordon import NodeCordonFault
from tasks.faults.noop import NoopFault
from tasks.lease import acquire_target_lease, lease_holder
from tasks.ledger import Ledger
from tasks.settings import Settings


def states(state: Path, run: str) -> list[str]:
    """The states of one run's local ledger entries."""
    return [e["state"] for e in json.loads((state / "ledger" / f"{run}.json").read_text())["entries"]]


def test_run_filter_reverts_only_that_runs_entries(state: Path, apiserver: Any) -> None:
    """With run_id, only that run's open entries are rolled back (its cordon undone); another run's stay open."""
    cluster = Cluster.from_kubeconfig(apiserver.kubeconfig, "lab")
    try:
        ctx = FaultContext(cluster=cluster, run_id="run-a", log=lambda m: None)
        spec = NodeCordon(selector={"names": ["node-1"], "mode": "all"})  # type: ignore[arg-type]
        cordon = NodeCordonFault().plan(spec, ctx, run_id="run-a", stage="s1", fault_id="cordon")
        mine = Ledger(state, "run-a", cluster)
        mine.record(cordon)
        cordon = NodeCordonFault().inject(cordon, ctx)
        mine.update(cordon, "applied")
        other = NoopFault().plan(
            Noop(), FaultContext(cluster=None, run_id="run-b"), run_id="run-b", stage="s1", fault_id="n"
        )
        Ledger(state, "run-b").update(other, "applied")
        acquire_target_lease(cluster, "run-a", 60)
        assert cluster.read_node("node-1").spec.unschedulable

        results = reconcile_target(
            "lab", Settings(), log=lambda m: None, run_id="run-a", release_lease="run-b"
        )
        assert [(r.run_id, r.fault_id, r.outcome) for r in results] == [("run-a", "cordon", "rolled-back")]
        assert not cluster.read_node("node-1").spec.unschedulable
        assert states(state, "run-a") == ["rolled-back"] and states(state, "run-b") == ["applied"]
        assert lease_holder(cluster, "gameday")[0] == "run-a", "only the named holder's lease is released"

        reconcile_target("lab", Settings(), log=lambda m: None, run_id="run-a", release_lease="run-a")
        assert lease_holder(cluster, "gameday") == (None, True)
        rest = reconcile_target("lab", Settings(), log=lambda m: None)
        assert [(r.run_id, r.outcome) for r in rest] == [("run-b", "rolled-back")]
    finally:
        cluster.set_unschedulable("node-1", False)
        cluster.close()


def test_a_live_campaigns_entries_are_left_to_it(state: Path, apiserver: Any) -> None:
    """Reconcile skips the entries of the run holding a live lease, unless the operator releases the lease."""
    cluster = Cluster.from_kubeconfig(apiserver.kubeconfig, "lab")
    try:
        live = NoopFault().plan(
            Noop(), FaultContext(cluster=None, run_id="run-live"), run_id="run-live", stage="s1", fault_id="n"
        )
        Ledger(state, "run-live").update(live, "applied")
        acquire_target_lease(cluster, "run-live", 60)
        assert reconcile_target("lab", Settings(), log=lambda m: None) == []
        assert states(state, "run-live") == ["applied"]
        forced = reconcile_target("lab", Settings(), log=lambda m: None, release_lease=True)
        assert [(r.run_id, r.outcome) for r in forced] == [("run-live", "rolled-back")]
        assert lease_holder(cluster, "gameday") == (None, True)
    finally:
        cluster.close()


def test_stop_takes_a_live_campaigns_target_and_reverts_its_faults(state: Path, apiserver: Any) -> None:
    """`stop` takes the lease from a live run (whose keeper reports the loss at its next beat), reverts the run's
    cordon though the run is live, and frees the target; with a hold it keeps new campaigns off instead."""
    from flows.reconcile import stop_target
    from tasks.errors import CampaignLocked
    from tasks.lease import STOP_PREFIX, LeaseKeeper

    cluster = Cluster.from_kubeconfig(apiserver.kubeconfig, "lab")
    lost: list[str] = []
    keeper = LeaseKeeper(cluster, "run-live", ttl=0.6, on_lost=lost.append).acquire()
    try:
        ctx = FaultContext(cluster=cluster, run_id="run-live", log=lambda m: None)
        spec = NodeCordon(selector={"names": ["node-1"], "mode": "all"})  # type: ignore[arg-type]
        cordon = NodeCordonFault().plan(spec, ctx, run_id="run-live", stage="s1", fault_id="cordon")
        ledger = Ledger(state, "run-live", cluster)
        ledger.record(cordon)
        ledger.update(NodeCordonFault().inject(cordon, ctx), "applied")
        assert cluster.read_node("node-1").spec.unschedulable
        assert reconcile_target("lab", Settings(), log=lambda m: None) == [], "reconcile leaves a live run alone"

        said: list[str] = []
        results = stop_target("lab", Settings(), log=said.append, settle_s=1.0)
        assert [(r.run_id, r.fault_id, r.outcome) for r in results] == [("run-live", "cordon", "rolled-back")]
        assert not cluster.read_node("node-1").spec.unschedulable
        assert states(state, "run-live") == ["rolled-back"]
        assert lost and STOP_PREFIX in lost[0], "the live run's keeper must learn its target was taken"
        assert any("took the target from campaign 'run-live'" in m for m in said), said
        assert lease_holder(cluster, "gameday") == (None, True), "without a hold the target is free at once"

        held = stop_target("lab", Settings(), log=lambda m: None, hold_s=30)
        assert held == []
        holder, stale = lease_holder(cluster, "gameday")
        assert holder is not None and holder.startswith(STOP_PREFIX) and not stale
        with pytest.raises(CampaignLocked, match=STOP_PREFIX):
            acquire_target_lease(cluster, "run-next", 60)
    finally:
        keeper.release()
        cluster.set_unschedulable("node-1", False)
        cluster.delete_lease("gameday", "gameday-campaign")
        cluster.close()
