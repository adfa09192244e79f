"""The plan is binding: with the seed `gameday plan` printed, a run kills the pods that plan named (a real
kube-apiserver, the real pod-kill fault); a planned pod gone before its stage is planned again, and the record
says so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from blueprints import parse
from blueprints.campaign import Stage
from blueprints.record import Approval
from tasks.cluster import Cluster
from tasks.faults import REGISTRY
from tasks.faults.base import FaultContext, Timeouts
from tasks.faults.selection import now
from tasks.probes import ProbeContext
from tasks.run.connect import plain_ops, probe_evaluator
from tasks.run.recorder import Recorder
from tasks.run.runner import CampaignRunner
from tests.flows.conftest import ListLedger

NAMESPACE = "binding"
BLUEPRINT = """
name: binding
owner: tests
hypothesis: {belief: the service survives losing two replicas, expectations: ["up >= 1 during fault"]}
target: {cluster: lab, namespaces: [binding], blast_radius: {max_pods: 2}}
observables: [{name: up, query: up}]
baseline: 0s
stages:
  - name: kill
    faults: [{kind: pod-kill, name: two, selector: {namespaces: [binding], label_selector: {app: web}, mode: fixed, value: 2}}]
    observe: 0s
    recovery: 0s
"""


@pytest.fixture
def pods(apiserver: Any) -> Iterator[Cluster]:
    """Eight pods labelled app=web in namespace binding on node-1 (no kubelet: they stay Pending), removed after."""
    cluster = Cluster(apiserver.client(), user="admin")
    core = client.CoreV1Api(cluster.api_client)
    cluster.ensure_namespace(NAMESPACE)
    if not core.list_namespaced_service_account(NAMESPACE).items:  # no controller-manager makes "default" here
        core.create_namespaced_service_account(NAMESPACE, {"metadata": {"name": "default"}})
    for i in range(8):
        core.create_namespaced_pod(NAMESPACE, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"web-{i}", "labels": {"app": "web"}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "lab/pause"}]}})
    yield cluster
    for p in core.list_namespaced_pod(NAMESPACE).items:
        core.delete_namespaced_pod(p.metadata.name, NAMESPACE, grace_period_seconds=0)
    cluster.close()


def _runner(cluster: Cluster, run_id: str, seed: str, approve: Any = None) -> CampaignRunner:
    ctx = FaultContext(cluster=cluster, run_id=run_id, selection_seed=seed, log=lambda m: None,
                       timeouts=Timeouts(rollback_wait_s=0.0))
    ops = plain_ops(REGISTRY, ListLedger(), probe_evaluator(ProbeContext(cluster=cluster)))
    kw = {"approve": approve} if approve else {}
    return CampaignRunner(parse(BLUEPRINT), ctx, ops, Recorder(run_id), **kw)


def _killed(runner: CampaignRunner) -> list[str]:
    (stage,) = runner.recorder.stages
    return sorted(stage.faults[0].evidence["deleted"])


def test_a_run_with_the_plans_seed_kills_the_pods_the_plan_named(pods: Cluster) -> None:
    """`gameday plan` (another run id) names two of eight pods; a run with its seed deletes exactly those two, and
    a run with another seed, for the same candidates, is free to pick others (it does, for this seed)."""
    planned = _runner(pods, "binding-plan", "s1").plan_all()["kill"][0].targets
    run = _runner(pods, "binding-run", "s1")
    assert run.run() == "completed"
    assert [f"pod/{k}" for k in _killed(run)] == sorted(planned)
    assert not [e for e in run.recorder.events if e.kind == "note" and "planned again" in e.message]
    other = _runner(pods, "binding-plan-2", "s2").plan_all()["kill"][0].targets
    assert sorted(other) != sorted(planned)


def test_a_planned_pod_gone_before_its_stage_is_planned_again_and_noted(pods: Cluster) -> None:
    """When a pod preflight planned is deleted before the stage (here by the approver), the stage plans again from
    the pods left and the record names the pod that was gone and the one hit in its place."""
    core = client.CoreV1Api(pods.api_client)
    gone: list[str] = []

    def approve(stage: Stage) -> Approval:
        victim = run.plans["kill"][0].targets[0].split("/")[-1]
        core.delete_namespaced_pod(victim, NAMESPACE, grace_period_seconds=0)
        gone.append(victim)
        return Approval(decision="go", by="test", comment="", at=now())

    text = BLUEPRINT.replace("    observe: 0s", "    approval: required\n    observe: 0s")
    run = _runner(pods, "binding-gone", "s3", approve)
    run.campaign = parse(text)
    assert run.run() == "completed"
    (note,) = [e for e in run.recorder.events if e.kind == "note" and "planned again" in e.message]
    assert f"pod/{NAMESPACE}/{gone[0]}" in note.message and f"{NAMESPACE}/{gone[0]}" not in _killed(run)


def test_new_candidates_before_its_stage_do_not_change_what_the_plan_named(pods: Cluster) -> None:
    """Pods that appear between preflight and the stage (a scale-up) change nothing: the stage kills the two pods
    preflight named, though a fresh draw over sixteen candidates would pick others, and nothing is noted."""
    core = client.CoreV1Api(pods.api_client)

    def approve(stage: Stage) -> Approval:
        for i in range(8, 16):
            core.create_namespaced_pod(NAMESPACE, {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"web-{i}", "labels": {"app": "web"}},
                "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "lab/pause"}]}})
        return Approval(decision="go", by="test", comment="", at=now())

    text = BLUEPRINT.replace("    observe: 0s", "    approval: required\n    observe: 0s")
    run = _runner(pods, "binding-grown", "s4", approve)
    run.campaign = parse(text)
    assert run.run() == "completed"
    planned = sorted(run.plans["kill"][0].targets)
    assert [f"pod/{k}" for k in _killed(run)] == planned
    assert not [e for e in run.recorder.events if e.kind == "note" and "planned again" in e.message]
    fresh = _runner(pods, "binding-grown", "s4").plan_all()["kill"][0].targets
    assert sorted(fresh) != planned
