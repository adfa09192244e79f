"""flows/reconcile.py: reconciling one target, all runs or only one run (what the cancellation hook uses)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    cluster = Cluster.from_kubeconfig(apiserver.kubeconfig, "lab-gameday-runner")
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
    cluster = Cluster.from_kubeconfig(apiserver.kubeconfig, "lab-gameday-runner")
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
