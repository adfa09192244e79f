"""control-plane-overload: client-storm with break-glass (a bare real API server) and daemonset-storm (lab)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from blueprints.faults import ControlPlaneOverload
from tasks.cluster import Cluster
from tasks.errors import NotFound
from tasks.faults.base import FaultContext, Injection, Timeouts
from tasks.faults.control_plane import ControlPlaneOverloadFault, ballast_configmap, create_ballast
from tasks.faults.storm_process import find_storms, read_stats
from tasks.ledger import Ledger
from tasks.settings import Settings
from tests.tasks.helpers import NODES, api_cluster, poll

FAULT = ControlPlaneOverloadFault()


@pytest.fixture(scope="module")
def storm_data(api: Any) -> None:
    """1,000 ConfigMaps, so that each cluster-wide LIST costs the server real work (10 seats)."""
    admin = Cluster.from_kubeconfig(api.kubeconfig, "lab-admin")
    admin.ensure_namespace("storm-data")

    def make(i: int) -> None:
        admin.create_configmap("storm-data", {"metadata": {"name": f"cm-{i}"}, "data": {"x": "y" * 200}})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make, range(1000)))
    admin.close()


@pytest.fixture
def runner(api: Any, tmp_path: Path) -> Iterator[tuple[Cluster, FaultContext]]:
    """The runner's facade (seeing the API server as the lab target, so the storm runs as telemetry/telemetry) and a
    context."""
    cluster = api_cluster(api, as_lab=True)
    ctx = FaultContext(cluster=cluster, run_id="cp", log=lambda m: None,
                       settings=Settings(state_dir=tmp_path / "state"), timeouts=Timeouts(storm_max_s=120))
    yield cluster, ctx
    cluster.close()


def _deleted(cluster: Cluster, namespace: str) -> bool:
    """Whether a namespace is gone or being deleted (a bare API server runs no namespace controller to finish it)."""
    try:
        meta = cluster.call("get namespace", cluster.core.read_namespace, namespace).metadata
    except NotFound:
        return True
    return meta is not None and meta.deletion_timestamp is not None


def _apf(cluster: Cluster) -> tuple[list[str], list[str]]:
    return sorted(cluster.flowschema_names()), sorted(cluster.priority_level_names())


def test_client_storm_gets_429s_while_breakglass_keeps_the_runner_served(
        storm_data: None, runner: tuple[Cluster, FaultContext], tmp_path: Path) -> None:
    """The storm (telemetry identity) is throttled; the runner's calls succeed; rollback restores APF objects."""
    cluster, ctx = runner
    before = _apf(cluster)
    spec = ControlPlaneOverload(mode="client-storm", resource="configmaps", rate=1000, concurrency=400,
                                ramp_up="1s")  # type: ignore[arg-type]
    inj = FAULT.plan(spec, ctx, run_id="cp1", stage="s", fault_id="storm")
    Ledger(tmp_path, "cp1").record(inj)
    inj = FAULT.inject(inj, ctx)
    try:
        assert "gameday-breakglass-cp1" in cluster.flowschema_names()
        poll(lambda: (read_stats(inj.undo["stats_path"]) or {}).get("throttled_429", 0) > 0, timeout=40)
        runner_calls = [len(cluster.list_nodes()) for _ in range(5)]
        evidence = FAULT.verify(inj, ctx)
    finally:
        FAULT.rollback(inj, ctx)
    assert runner_calls == [3] * 5
    assert evidence.landed, evidence.summary
    assert evidence.details["storm"]["throttled_429"] > 0 and evidence.details["runner_call"]["ok"]
    assert evidence.details["identity"] == "system:serviceaccount:telemetry:telemetry"
    assert find_storms(inj.undo["tag"]) == []
    assert _apf(cluster) == before
    FAULT.rollback(inj, ctx)  # a second rollback is harmless
    assert _apf(cluster) == before


def test_client_storm_rollback_of_a_planned_only_injection(runner: tuple[Cluster, FaultContext]) -> None:
    """Rolling back an injection that was recorded but never applied touches nothing and does not fail."""
    cluster, ctx = runner
    before = _apf(cluster)
    inj = FAULT.plan(ControlPlaneOverload(), ctx, run_id="cp2", stage="s", fault_id="storm")
    FAULT.rollback(inj, ctx)
    assert _apf(cluster) == before and find_storms(inj.undo["tag"]) == []


def test_client_storm_half_applied_breakglass_only(runner: tuple[Cluster, FaultContext]) -> None:
    """If only break-glass was opened before a crash, rollback removes it."""
    from tasks.faults.breakglass import open_breakglass

    cluster, ctx = runner
    before = _apf(cluster)
    inj = FAULT.plan(ControlPlaneOverload(), ctx, run_id="cp3", stage="s", fault_id="storm")
    open_breakglass(cluster, inj.undo["breakglass"], inj.undo["runner_user"])
    assert _apf(cluster) != before
    FAULT.rollback(inj, ctx)
    assert _apf(cluster) == before


def test_ballast_is_created_before_the_storm_and_removed_by_label(runner: tuple[Cluster, FaultContext]) -> None:
    """ballast: N labelled ConfigMaps exist in the storm's namespace while the storm runs; rollback (even from a
    fresh context, as reconcile after a killed runner) deletes them all and the namespace it created, twice over."""
    cluster, ctx = runner
    spec = ControlPlaneOverload(mode="client-storm", resource="configmaps", rate=5, concurrency=2, ballast=120,
                                ballast_bytes=64, namespace="ballast-test", break_glass=False)
    assert not cluster.namespace_exists("ballast-test")
    inj = FAULT.plan(spec, ctx, run_id="cp4", stage="s", fault_id="storm")
    assert any("120 ConfigMaps in ballast-test" in ch.object for ch in inj.changes)
    inj = FAULT.inject(inj, ctx)
    try:
        made = cluster.list_configmaps("ballast-test", {"gameday.dev/ballast": inj.undo["ballast"]})
        assert len(made) == 120 and {len(cm.data["ballast"]) for cm in made} == {64}
    finally:
        FAULT.rollback(Injection.model_validate(inj.model_dump()), ctx)  # as from the ledger: no process handle
    assert find_storms(inj.undo["tag"]) == []
    assert cluster.list_configmaps("ballast-test", {"gameday.dev/ballast": inj.undo["ballast"]}) == []
    poll(lambda: _deleted(cluster, "ballast-test"), timeout=30)
    FAULT.rollback(inj, ctx)  # a second rollback is harmless


def test_ballast_creation_keeps_what_a_lost_answer_already_created(runner: tuple[Cluster, FaultContext]) -> None:
    """A ballast ConfigMap that exists already (a create whose answer was lost, retried into a 409) is kept, not an
    error: the ballast ends whole."""
    cluster, _ = runner
    cluster.ensure_namespace("ballast-retry")
    try:
        cluster.create_configmap("ballast-retry", ballast_configmap("bl-retry", 2, "bl-retry", 16))
        create_ballast(cluster, "ballast-retry", "bl-retry", 5, 16)
        made = cluster.list_configmaps("ballast-retry", {"gameday.dev/ballast": "bl-retry"})
        assert sorted(cm.metadata.name for cm in made) == [f"bl-retry-{i:05d}" for i in range(5)]
    finally:
        cluster.delete_configmaps("ballast-retry", {"gameday.dev/ballast": "bl-retry"})
        cluster.delete_namespace("ballast-retry")


def test_ballast_needs_a_storm_that_lists_configmaps() -> None:
    """A ballast under a storm of another resource is refused with a sentence naming both fields."""
    with pytest.raises(ValueError, match="ballast makes LISTs of configmaps expensive; this storm lists pods"):
        ControlPlaneOverload(resource="pods", ballast=10)


def test_daemonset_storm_puts_a_pod_on_every_node_and_rollback_removes_it(
        lab_cluster: Cluster, lab_ctx: FaultContext) -> None:
    """daemonset-storm creates its namespace and one storm pod per node; rollback deletes both."""
    spec = ControlPlaneOverload(mode="daemonset-storm", namespace="gameday-storm-t", per_pod_rate=2,
                                break_glass=True)
    assert not lab_cluster.namespace_exists("gameday-storm-t")
    fs_before = _apf(lab_cluster)
    inj = FAULT.plan(spec, lab_ctx, run_id="ds1", stage="s", fault_id="ds")
    assert inj.undo["created_namespace"] is True
    inj = FAULT.inject(inj, lab_ctx)
    try:
        evidence = FAULT.verify(inj, lab_ctx)
    finally:
        FAULT.rollback(inj, lab_ctx)
    assert evidence.landed, evidence.summary
    assert evidence.details["nodes"] == NODES
    poll(lambda: not lab_cluster.list_pods(["gameday-storm-t"]), timeout=30)
    poll(lambda: not lab_cluster.namespace_exists("gameday-storm-t"), timeout=30)
    assert _apf(lab_cluster) == fs_before
    FAULT.rollback(inj, lab_ctx)


def test_daemonset_storm_as_a_service_account_that_may_list_is_served(
        lab: Any, lab_cluster: Cluster, lab_ctx: FaultContext) -> None:
    """A daemonset-storm run as telemetry/telemetry (which may list pods) gets its LISTs served (200s, as the
    incident's telemetry service did), and rollback leaves the namespace it did not create."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    spec = ControlPlaneOverload(mode="daemonset-storm", namespace="telemetry", service_account="telemetry",
                                per_pod_rate=2, break_glass=False)
    inj = FAULT.plan(spec, lab_ctx, run_id="ds2", stage="s", fault_id="sa")
    assert inj.undo["created_namespace"] is False
    assert "as telemetry/telemetry" in inj.changes[-1].detail
    inj = FAULT.inject(inj, lab_ctx)
    try:
        evidence = FAULT.verify(inj, lab_ctx)
        pods = {p.metadata.name for p in lab_cluster.list_pods(["telemetry"], {"app": inj.undo["daemonset"]})}
        assert {p.spec.service_account_name for p in lab_cluster.list_pods(["telemetry"])} >= {"telemetry"}

        def served() -> bool:
            text = httpx.get(lab.endpoints["runtime_metrics"], timeout=5).text
            ok = {s.labels["pod"] for family in text_string_to_metric_families(text)
                  for s in family.samples if s.name == "liststorm_requests_total" and s.labels.get("code") == "200"
                  and s.value > 0}
            return pods <= ok

        poll(served, timeout=30)
    finally:
        FAULT.rollback(inj, lab_ctx)
    assert evidence.landed, evidence.summary
    poll(lambda: not lab_cluster.list_pods(["telemetry"], {"app": inj.undo["daemonset"]}), timeout=30)
    assert lab_cluster.namespace_exists("telemetry")


def test_storm_daemonset_pods_carry_rate_backoff_and_service_account() -> None:
    """The storm DaemonSet's pods get RATE and RESOURCE, BACKOFF_MAX only when client_backoff_max is set, and the
    service account when one is named."""
    from datetime import timedelta

    from tasks.faults.control_plane import storm_daemonset

    plain = storm_daemonset("s", ControlPlaneOverload(mode="daemonset-storm", per_pod_rate=3))["spec"]["template"]["spec"]
    assert {e["name"]: e["value"] for e in plain["containers"][0]["env"]} == {"RATE": "3", "RESOURCE": "pods"}
    assert "serviceAccountName" not in plain
    spec = ControlPlaneOverload(mode="daemonset-storm", client_backoff_max=timedelta(seconds=2),
                                service_account="telemetry")
    tuned = storm_daemonset("s", spec)["spec"]["template"]["spec"]
    assert {e["name"]: e["value"] for e in tuned["containers"][0]["env"]}["BACKOFF_MAX"] == "2"
    assert tuned["serviceAccountName"] == "telemetry"
