"""The ledger (local file and in-cluster ConfigMap), reconcile basics, and the campaign lease."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from blueprints.faults import NodeCordon, Noop
from tasks.errors import CampaignLocked
from tasks.faults.base import FaultContext
from tasks.faults.node_cordon import NodeCordonFault
from tasks.faults.noop import NoopFault
from tasks.lease import LEASE_NAME, acquire_target_lease, lease_holder, release_target_lease
from tasks.ledger import Ledger, configmap_name
from tasks.reconcile import reconcile
from tests.tasks.helpers import NODES, api_cluster


def _noop(run: str, fid: str) -> Any:
    return NoopFault().plan(Noop(), FaultContext(cluster=None, run_id=run), run_id=run, stage="s1", fault_id=fid)


def test_record_writes_local_file_before_anything_else(tmp_path: Path) -> None:
    """record() leaves a planned entry on disk that a fresh Ledger reads back."""
    led = Ledger(tmp_path, "run-a")
    led.record(_noop("run-a", "f0"))
    data = json.loads((tmp_path / "ledger" / "run-a.json").read_text())
    assert data["entries"][0]["state"] == "planned"
    assert [e.key for e in Ledger(tmp_path, "run-a").open_entries()] == ["s1.f0"]


def test_update_moves_states_and_open_entries_follow(tmp_path: Path) -> None:
    """applied stays open; rolled-back closes; rollback-failed reopens with its error kept."""
    led = Ledger(tmp_path, "run-b")
    a, b = _noop("run-b", "f0"), _noop("run-b", "f1")
    led.record(a)
    led.record(b)
    led.update(a, "applied")
    led.update(b, "rolled-back")
    assert [e.key for e in led.open_entries()] == ["s1.f0"]
    led.update(a, "rollback-failed", "boom")
    fresh = Ledger(tmp_path, "run-b")
    assert fresh.open_entries()[0].state == "rollback-failed" and fresh.open_entries()[0].error == "boom"


def test_reconcile_local_only_is_idempotent(tmp_path: Path) -> None:
    """reconcile rolls back open local entries, marks them, and does nothing the second time."""
    led = Ledger(tmp_path, "run-c")
    led.record(_noop("run-c", "f0"))
    first = reconcile(None, tmp_path, log=lambda m: None)
    assert [(r.fault_id, r.outcome) for r in first] == [("f0", "rolled-back")]
    assert Ledger(tmp_path, "run-c").open_entries() == []
    assert reconcile(None, tmp_path, log=lambda m: None) == []


def test_cluster_ledger_configmap_one_key_per_fault(api: Any, tmp_path: Path) -> None:
    """A cluster fault's entry lands in a labelled ConfigMap; reconcile reverts it and removes the map."""
    cluster = api_cluster(api)
    try:
        ctx = FaultContext(cluster=cluster, run_id="run-d", log=lambda m: None)
        spec = NodeCordon(selector={"names": [NODES[1]], "mode": "all"})  # type: ignore[arg-type]
        inj = NodeCordonFault().plan(spec, ctx, run_id="run-d", stage="s1", fault_id="cordon")
        led = Ledger(tmp_path, "run-d", cluster)
        led.record(inj)
        cm = cluster.read_configmap("gameday", configmap_name("run-d"))
        assert cm.metadata.labels["app.kubernetes.io/managed-by"] == "gameday"
        assert json.loads(cm.data["s1.cordon"])["state"] == "planned"
        NodeCordonFault().inject(inj, ctx)
        led.update(inj, "applied")
        (tmp_path / "ledger" / "run-d.json").unlink()  # only the cluster copy is left
        results = reconcile(cluster, tmp_path, log=lambda m: None)
        assert [(r.fault_id, r.sources, r.outcome) for r in results] == [("cordon", ["cluster"], "rolled-back")]
        assert not cluster.read_node(NODES[1]).spec.unschedulable
        assert configmap_name("run-d") not in [c.metadata.name for c in cluster.list_configmaps("gameday")]
    finally:
        cluster.set_unschedulable(NODES[1], False)
        cluster.close()


def test_campaign_lease_refuses_a_second_holder_and_takes_over_a_stale_one(api: Any) -> None:
    """A live lease held by another campaign raises CampaignLocked naming it; a stale one is taken over."""
    cluster = api_cluster(api)
    try:
        acquire_target_lease(cluster, "campaign-a", 30)
        acquire_target_lease(cluster, "campaign-a", 30)  # renewing is fine
        with pytest.raises(CampaignLocked, match="campaign-a"):
            acquire_target_lease(cluster, "campaign-b", 30)
        assert not release_target_lease(cluster, "campaign-b")
        lease = cluster.to_dict(cluster.read_lease("gameday", LEASE_NAME))
        # the client re-serialises it with isoformat(), which drops a zero fraction the real server's MicroTime needs
        lease["spec"]["renewTime"] = "2000-01-01T00:00:00.000001Z"
        cluster.replace_lease("gameday", LEASE_NAME, lease)
        assert lease_holder(cluster, "gameday") == ("campaign-a", True)
        acquire_target_lease(cluster, "campaign-b", 30)
        assert lease_holder(cluster, "gameday") == ("campaign-b", False)
        assert release_target_lease(cluster, "campaign-b")
        assert lease_holder(cluster, "gameday") == (None, True)
    finally:
        cluster.delete_lease("gameday", LEASE_NAME)
        cluster.close()
