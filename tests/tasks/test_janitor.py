"""The janitor (dead-man switch) against the session lab's real API server: a dead campaign's faults are reverted
from the in-cluster ledger and its Lease released; a live campaign, or one within the grace, is left alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blueprints.faults import NodeCordon
from tasks.cluster import Cluster
from tasks.errors import NotFound
from tasks.faults.base import FaultContext, Injection
from tasks.faults.node_cordon import NodeCordonFault
from tasks.janitor import Janitor
from tasks.lease import LEASE_NAME, LeaseKeeper, acquire_target_lease, claim_expired_lease
from tasks.ledger import Ledger, configmap_name
from tests.tasks.helpers import poll

NS = "gameday-janitor-t"
FAULT = NodeCordonFault()


def _cordoned(c: Cluster) -> set[str]:
    return {n.metadata.name for n in c.list_nodes() if n.spec.unschedulable}


def _inject(ctx: FaultContext, state: Path, run_id: str, nodes: list[str]) -> list[Injection]:
    """Cordon each node as its own fault of ``run_id``, written to the in-cluster ledger before it is applied."""
    ledger = Ledger(state, run_id, ctx.cluster, NS)
    done = []
    for node in nodes:
        inj = FAULT.plan(NodeCordon(selector={"names": [node], "mode": "all"}), ctx,  # type: ignore[arg-type]
                         run_id=run_id, stage="s", fault_id=f"cordon-{node}")
        ledger.record(inj)
        inj = FAULT.inject(inj, ctx)
        ledger.update(inj, "applied")
        done.append(inj)
    return done


@pytest.fixture
def janitor(lab_cluster: Cluster, lab_admin: Cluster, tmp_path: Path) -> Iterator[Janitor]:
    """A janitor over the ledger namespace NS; the nodes uncordoned and NS's Lease and ledgers gone afterwards."""
    lines: list[str] = []
    keeper = Janitor(lab_cluster, NS, grace_s=0.0, log=lines.append, state_dir=tmp_path / "janitor")
    yield keeper
    for node in ("lab-node-1", "lab-node-2"):
        lab_admin.set_unschedulable(node, False)
    lab_admin.delete_lease(NS, LEASE_NAME)
    lab_admin.delete_configmaps(NS, {"app.kubernetes.io/managed-by": "gameday"})


def _metric(keeper: Janitor, name: str, **labels: str) -> float:
    value = keeper.metrics.registry.get_sample_value(name, labels)
    return float(value or 0.0)


def test_a_dead_campaign_is_reverted_newest_first_and_its_lease_released(
        janitor: Janitor, lab_ctx: FaultContext, lab_admin: Cluster, tmp_path: Path) -> None:
    """A run whose 2 s Lease stopped being renewed left two nodes cordoned: while the Lease is live a sweep leaves
    them, once it ran out a sweep uncordons both (newest first), records an Event on the Lease, releases the Lease,
    removes the ledger and counts it; the next sweep finds nothing."""
    acquire_target_lease(lab_ctx.cluster, "run-dead", 2, NS)
    _inject(lab_ctx, tmp_path / "runner", "run-dead", ["lab-node-1", "lab-node-2"])
    assert _cordoned(lab_admin) >= {"lab-node-1", "lab-node-2"}
    early = janitor.sweep()
    assert early.live and early.holder == "run-dead" and not early.claimed and early.open_entries == 2, early
    assert _cordoned(lab_admin) >= {"lab-node-1", "lab-node-2"}

    swept = poll(lambda: (s := janitor.sweep()).claimed and s, timeout=20)
    assert [(r.fault_id, r.outcome) for r in swept.reverted] == [
        ("cordon-lab-node-2", "rolled-back"), ("cordon-lab-node-1", "rolled-back")], swept
    assert swept.released and swept.failed == []
    assert not _cordoned(lab_admin) & {"lab-node-1", "lab-node-2"}
    with pytest.raises(NotFound):
        lab_admin.read_lease(NS, LEASE_NAME)
    assert configmap_name("run-dead") not in [c.metadata.name for c in lab_admin.list_configmaps(NS)]
    events = lab_admin.call("list events", lab_admin.core.list_namespaced_event, NS).items
    (event,) = [e for e in events if e.reason == "CampaignReverted" and "run-dead" in e.message]
    assert event.involved_object.kind == "Lease" and event.type == "Normal", event
    assert "cordon-lab-node-2 (node-cordon) rolled-back" in event.message, event.message
    assert _metric(janitor, "gameday_janitor_reverts_total", kind="node-cordon", outcome="rolled-back") == 2
    assert _metric(janitor, "gameday_janitor_campaigns_reverted_total") == 1

    again = janitor.sweep()
    assert not again.claimed and again.open_entries == 0 and again.reverted == [], again


def test_a_live_campaign_is_left_alone_until_it_lets_go(
        janitor: Janitor, lab_ctx: FaultContext, lab_admin: Cluster, tmp_path: Path) -> None:
    """A run whose keeper renews a 3 s Lease keeps its cordon through sweeps made after several Lease durations;
    when it releases the Lease with the entry still open (a run that died after letting go), the next sweep
    reverts it."""
    keeper = LeaseKeeper(lab_ctx.cluster, "run-live", NS, ttl=3).acquire()
    try:
        _inject(lab_ctx, tmp_path / "runner", "run-live", ["lab-node-1"])
        poll(lambda: keeper.renewals >= 3, timeout=20)  # three renewals: more than one Lease duration went by
        for _ in range(3):
            swept = janitor.sweep()
            assert swept.live and not swept.claimed and swept.reverted == [], swept
        assert "lab-node-1" in _cordoned(lab_admin)
    finally:
        keeper.release()
    swept = janitor.sweep()
    assert swept.claimed and [r.fault_id for r in swept.reverted] == ["cordon-lab-node-1"], swept
    assert "lab-node-1" not in _cordoned(lab_admin)


def test_the_grace_holds_off_a_lease_that_only_just_ran_out(
        janitor: Janitor, lab_ctx: FaultContext, lab_admin: Cluster, tmp_path: Path) -> None:
    """With a 600 s grace, a Lease that ran out is still treated as live (an API outage may have kept the runner
    from renewing); the same state swept with no grace is reverted."""
    acquire_target_lease(lab_ctx.cluster, "run-slow", 1, NS)
    _inject(lab_ctx, tmp_path / "runner", "run-slow", ["lab-node-2"])
    patient = Janitor(lab_ctx.cluster, NS, grace_s=600.0, log=lambda m: None, state_dir=tmp_path / "patient")
    poll(lambda: not janitor._lease()[1], timeout=10)  # the 1 s Lease has run out
    held = patient.sweep()
    assert held.live and not held.claimed and "lab-node-2" in _cordoned(lab_admin), held
    assert not claim_expired_lease(lab_ctx.cluster, "someone", 60, NS, grace_s=600.0)[0]
    swept = janitor.sweep()
    assert swept.claimed and [r.outcome for r in swept.reverted] == ["rolled-back"], swept
    assert "lab-node-2" not in _cordoned(lab_admin)


class _RenewsFirst:
    """The lab cluster, except that the run renews its Lease just before the first Lease replace goes out."""

    def __init__(self, cluster: Cluster, holder: str) -> None:
        self.cluster, self.holder, self.renewed = cluster, holder, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cluster, name)

    def replace_lease(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        if not self.renewed:
            self.renewed = True
            acquire_target_lease(self.cluster, self.holder, 60, namespace)  # takes over its own stale Lease
        self.cluster.replace_lease(namespace, name, body)


def test_a_run_that_renews_while_the_janitor_claims_wins(lab_ctx: FaultContext, lab_admin: Cluster) -> None:
    """A run renewing its ran-out Lease between the janitor's read and its claim keeps it: the claim, written with
    the resourceVersion it read, is refused and nothing is taken."""
    acquire_target_lease(lab_ctx.cluster, "run-back", 1, NS)
    try:
        poll(lambda: _expired(lab_admin), timeout=10)
        racing = _RenewsFirst(lab_ctx.cluster, "run-back")
        taken, holder = claim_expired_lease(racing, "gameday-janitor-x", 60, NS)
        assert racing.renewed and (taken, holder) == (False, "run-back")
        lease = lab_admin.read_lease(NS, LEASE_NAME)
        assert (lease.spec.holder_identity, lease.spec.lease_duration_seconds) == ("run-back", 60)
    finally:
        lab_admin.delete_lease(NS, LEASE_NAME)


def _expired(c: Cluster) -> bool:
    from tasks.lease import lease_holder

    return lease_holder(c, NS)[1]
