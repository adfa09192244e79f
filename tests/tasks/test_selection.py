"""Selectors and blast-radius checks."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest

from blueprints.campaign import BlastRadius
from blueprints.common import NodeSelector, PodSelector
from tasks.errors import BlastRadiusExceeded
from tasks.faults.base import FaultContext
from tasks.faults.selection import blast_radius_problems, check_blast_radius, choose, k8s_name


@pytest.mark.parametrize(("mode", "value", "expected"), [
    ("one", None, 1), ("all", None, 10), ("fixed", 3, 3), ("fixed", 30, 10), ("fixed-percent", 25, 2),
    ("fixed-percent", 1, 1),
])
def test_choose_picks_as_many_as_the_mode_says(mode: str, value: float | None, expected: int) -> None:
    """one/all/fixed/fixed-percent pick the Chaos-Mesh counts, keeping candidate order."""
    sel = PodSelector(namespaces=["a"], mode=mode, value=value)  # type: ignore[arg-type]
    picked = choose(list(range(10)), sel, random.Random(1))
    assert len(picked) == expected and picked == sorted(picked)


def test_choose_from_nothing_is_nothing() -> None:
    """No candidates, nothing chosen."""
    assert choose([], NodeSelector(mode="all")) == []


def test_blast_radius_counts_and_percent() -> None:
    """Counts and percentages are both checked; each exceeded cap is named."""
    radius = BlastRadius(max_nodes=2, max_pods_percent=10)
    assert blast_radius_problems(radius, nodes=2, pods=1, total_nodes=4, total_pods=10) == []
    problems = blast_radius_problems(radius, nodes=3, pods=2, total_nodes=4, total_pods=10)
    assert len(problems) == 2 and "max_nodes 2" in problems[0] and "20.0%" in problems[1]


def test_blast_radius_percent_of_empty_cluster_counts_as_all() -> None:
    """Touching something in a cluster reported as empty is 100%, never 0%."""
    radius = BlastRadius(max_nodes_percent=50)
    assert blast_radius_problems(radius, nodes=1, pods=0, total_nodes=0, total_pods=0)


class _CountingCluster:
    def __init__(self, nodes: int, pods: int) -> None:
        self.nodes, self.pods = nodes, pods

    def list_nodes(self, labels: Any = None) -> list[Any]:
        return [SimpleNamespace()] * self.nodes

    def list_pods(self, *a: Any, **k: Any) -> list[Any]:
        return [SimpleNamespace()] * self.pods


def test_check_blast_radius_reads_cluster_totals() -> None:
    """check_blast_radius raises BlastRadiusExceeded using the cluster's node and pod counts."""
    ctx = FaultContext(cluster=_CountingCluster(nodes=10, pods=100), run_id="r",
                       blast_radius=BlastRadius(max_nodes_percent=20, max_pods_percent=5))
    assert check_blast_radius(ctx, "x", nodes=2, pods=5)["total_nodes"] == 10
    with pytest.raises(BlastRadiusExceeded, match="max_nodes_percent"):
        check_blast_radius(ctx, "x", nodes=3)
    with pytest.raises(BlastRadiusExceeded, match="max_pods_percent"):
        check_blast_radius(ctx, "x", pods=6)


def test_k8s_name_is_a_dns_label() -> None:
    """Names built from run ids are lower-case DNS labels of at most 63 characters."""
    name = k8s_name("gameday-dns-block", "Run_2024/11:23" * 10, "f")
    assert len(name) <= 63 and name == name.lower() and name[0].isalnum() and name[-1].isalnum()
    assert all(ch.isalnum() or ch == "-" for ch in name)


def _planned(*targets: list[str]) -> list[Any]:
    from datetime import UTC, datetime

    from tasks.faults.base import Injection

    return [Injection(run_id="r", stage="s", fault_id=f"f{i}", kind="node-cordon", spec={}, summary="", targets=t,
                      planned_at=datetime.now(UTC)) for i, t in enumerate(targets)]


def test_a_stages_faults_are_counted_together_each_object_once() -> None:
    """Two faults each within max_nodes 1 exceed it together (the stage is named); the same node touched by both
    counts once; GPUs are counted against max_gpus the same way."""
    from tasks.faults.selection import check_stage_blast_radius

    ctx = FaultContext(cluster=_CountingCluster(nodes=4, pods=10), run_id="r",
                       blast_radius=BlastRadius(max_nodes=1, max_gpus=1))
    with pytest.raises(BlastRadiusExceeded, match=r"stage 's' \(2 faults together\).*2 node\(s\) > max_nodes 1"):
        check_stage_blast_radius(ctx, "s", _planned(["node/a"], ["node/b"]))
    counts = check_stage_blast_radius(ctx, "s", _planned(["node/a"], ["node/a", "gpu/a/0"]))
    assert (counts["nodes"], counts["gpus"]) == (1, 1)
    with pytest.raises(BlastRadiusExceeded, match=r"2 GPU\(s\) > max_gpus 1"):
        check_stage_blast_radius(ctx, "s", _planned(["gpu/a/0"], ["gpu/a/1"]))


def test_a_chaostoolkit_action_counts_what_it_declares_it_touches() -> None:
    """A CTK action declaring two nodes is refused under max_nodes 1 at plan time; one node plans, its targets are
    what it declared (so the stage counts them with the other faults); a target that is no node/pod/gpu is refused
    at its path."""
    from blueprints.errors import BlueprintError
    from blueprints.faults import ChaosToolkitFault
    from blueprints.loader import parse
    from tasks.faults.chaostoolkit import ChaosToolkitBehaviour as Behaviour

    ctx = FaultContext(cluster=_CountingCluster(nodes=4, pods=10), run_id="r", blast_radius=BlastRadius(max_nodes=1))
    action = {"name": "drain", "type": "action", "provider": {"type": "process", "path": "true"}}
    with pytest.raises(BlastRadiusExceeded, match="2 node"):
        Behaviour().plan(ChaosToolkitFault(action=action, touches=["node/a", "node/b"]), ctx, run_id="r", stage="s",
                         fault_id="ctk")
    inj = Behaviour().plan(ChaosToolkitFault(action=action, touches=["node/a", "pod/ns/p"]), ctx, run_id="r",
                           stage="s", fault_id="ctk")
    assert inj.targets == ["node/a", "pod/ns/p"]
    text = ("name: t\nowner: o\nhypothesis: {belief: b, expectations: ['x >= 0 during fault']}\n"
            "target: {cluster: lab, namespaces: [a], blast_radius: {max_nodes: 1}}\n"
            "observables: [{name: x, query: up}]\nstages: [{name: s, faults: [{kind: chaostoolkit, "
            "action: {name: a, type: action, provider: {type: process, path: 'true'}}, touches: [nodes/a]}]}]\n")
    with pytest.raises(BlueprintError, match=r"stages\[0\]\.faults\[0\].*touches"):
        parse(text)


def test_choose_keeps_the_planned_candidates_and_draws_only_in_place_of_those_gone() -> None:
    """Candidates named in ``keep`` are picked first; only the shortfall is drawn from the others."""
    sel = PodSelector(namespaces=["a"], mode="fixed", value=3)
    assert choose(list(range(20)), sel, random.Random(7), keep={"4", "11", "17"}) == [4, 11, 17]
    refilled = choose([c for c in range(20) if c != 11], sel, random.Random(7), keep={"4", "11", "17"})
    assert len(refilled) == 3 and {4, 17} < set(refilled) and 11 not in refilled
