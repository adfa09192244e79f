"""coredns-outage against the lab: each mode lands, and rollback restores the exact prior state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blueprints.faults import CorednsOutage
from tasks.cluster import Cluster
from tasks.errors import NotFound
from tasks.faults.base import FaultContext
from tasks.faults.coredns import CorednsOutageFault
from tasks.ledger import Ledger
from tasks.probes.dns import query
from tests.tasks.helpers import poll

FAULT = CorednsOutageFault()
QNAME = "kube-dns.kube-system.svc.cluster.local"


def _state(c: Cluster) -> dict[str, Any]:
    dep = c.read_deployment("kube-system", "coredns")
    cm = c.read_configmap("kube-system", "coredns")
    policies = c.net.list_namespaced_network_policy("kube-system").items
    return {"replicas": dep.spec.replicas, "corefile": cm.data["Corefile"],
            "policies": sorted(p.metadata.name for p in policies)}


@pytest.fixture
def healthy_dns(lab: Any, lab_admin: Cluster) -> Iterator[dict[str, Any]]:
    """CoreDNS answering before the test, and again after it (so tests do not leak an outage)."""
    def answering() -> bool:
        return query(lab.endpoints["dns"], QNAME, timeout=1.0).rcode == "NOERROR"

    poll(answering, timeout=60)
    before = _state(lab_admin)
    yield before
    poll(answering, timeout=60)


def _run(spec: CorednsOutage, ctx: FaultContext, tmp_path: Path, fid: str) -> tuple[Any, Any]:
    inj = FAULT.plan(spec, ctx, run_id="dns", stage="s", fault_id=fid)
    Ledger(tmp_path, "dns").record(inj)
    inj = FAULT.inject(inj, ctx)
    try:
        evidence = FAULT.verify(inj, ctx)
    finally:
        FAULT.rollback(inj, ctx)
    return inj, evidence


def test_scale_to_zero_lands_and_restores_replicas(healthy_dns: dict[str, Any], lab_admin: Cluster,
                                                   lab_ctx: FaultContext, tmp_path: Path) -> None:
    """Scaled to zero, real DNS queries fail; rollback scales back to exactly the prior replica count."""
    inj, evidence = _run(CorednsOutage(mode="scale-to-zero"), lab_ctx, tmp_path, "scale")
    assert evidence.landed, evidence.summary
    assert evidence.details["replicas"] == 0 and evidence.details["rcode"] != "NOERROR"
    assert inj.undo["replicas"] == healthy_dns["replicas"]
    assert _state(lab_admin) == healthy_dns
    FAULT.rollback(inj, lab_ctx)
    assert _state(lab_admin) == healthy_dns


def test_block_creates_exactly_one_policy_and_removes_it(healthy_dns: dict[str, Any], lab_admin: Cluster,
                                                         lab_ctx: FaultContext, tmp_path: Path) -> None:
    """The deny policy exists during the fault and the lab's service front enforces it (DNS cut); rollback deletes it."""
    inj, evidence = _run(CorednsOutage(mode="block"), lab_ctx, tmp_path, "block")
    assert evidence.details["exists"] is True
    assert evidence.landed, evidence.summary
    assert evidence.details["rcode"] != "NOERROR"
    assert _state(lab_admin) == healthy_dns
    FAULT.rollback(inj, lab_ctx)
    assert _state(lab_admin) == healthy_dns


def test_corefile_servfail_lands_and_restores_text_byte_for_byte(
        healthy_dns: dict[str, Any], lab_admin: Cluster, lab_ctx: FaultContext, tmp_path: Path) -> None:
    """The edited Corefile makes the zone answer SERVFAIL; rollback restores the original text exactly."""
    spec = CorednsOutage(mode="corefile", corefile={"zones": ["svc.cluster.local"], "action": "servfail"})  # type: ignore[arg-type]
    inj, evidence = _run(spec, lab_ctx, tmp_path, "corefile")
    assert evidence.landed, evidence.summary
    assert evidence.details["rcode"] == "SERVFAIL"
    assert inj.undo["original"] == healthy_dns["corefile"]
    assert _state(lab_admin) == healthy_dns
    FAULT.rollback(inj, lab_ctx)
    assert _state(lab_admin)["corefile"] == healthy_dns["corefile"]


def test_rollback_of_a_recorded_but_never_applied_injection(healthy_dns: dict[str, Any], lab_admin: Cluster,
                                                            lab_ctx: FaultContext) -> None:
    """Each mode's rollback, with nothing applied, leaves the cluster untouched."""
    rv = lab_admin.read_configmap("kube-system", "coredns").metadata.resource_version
    specs = [CorednsOutage(mode="scale-to-zero"), CorednsOutage(mode="block"),
             CorednsOutage(mode="corefile", corefile={"zones": ["example.org"]})]  # type: ignore[arg-type]
    for i, spec in enumerate(specs):
        FAULT.rollback(FAULT.plan(spec, lab_ctx, run_id="dns2", stage="s", fault_id=f"f{i}"), lab_ctx)
    assert _state(lab_admin) == healthy_dns
    assert lab_admin.read_configmap("kube-system", "coredns").metadata.resource_version == rv


def test_missing_deployment_is_a_typed_error(lab_ctx: FaultContext) -> None:
    """Planning against a deployment that does not exist raises NotFound, changing nothing."""
    with pytest.raises(NotFound):
        FAULT.plan(CorednsOutage(mode="scale-to-zero", deployment="no-such"), lab_ctx, run_id="x", stage="s",
                   fault_id="f")
