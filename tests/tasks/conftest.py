"""Fixtures for the tasks tests: a session lab, a small-seat API server, and clusters/contexts over them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tasks.cluster import Cluster
from tasks.faults.base import FaultContext
from tasks.settings import Settings
from tests.tasks.helpers import NODES


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A whole lab (3 CPU nodes, time scale 10) for the session; torn down even on failure."""
    from lab.testing import running_lab

    with running_lab(tmp_path_factory.mktemp("lab"), nodes=3, gpu_nodes=0, time_scale=10) as handle:
        yield handle


@pytest.fixture(scope="session")
def lab_settings(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings pointing at the session lab, with a private state dir."""
    return Settings(state_dir=tmp_path_factory.mktemp("state"), lab_state_dir=lab.state_dir)


@pytest.fixture(scope="session")
def lab_cluster(lab: Any, lab_settings: Settings) -> Iterator[Cluster]:
    """The runner's view of the lab, resolved like a campaign target ``cluster: lab``."""
    from blueprints.campaign import BlastRadius, Target

    target = Target(cluster="lab", namespaces=["inference", "kube-system"], blast_radius=BlastRadius(max_nodes=3))
    cluster = Cluster.for_target(target, lab_settings)
    yield cluster
    cluster.close()


@pytest.fixture(scope="session")
def lab_admin(lab: Any) -> Iterator[Cluster]:
    """An admin facade over the lab, for arranging and inspecting state."""
    cluster = Cluster.from_kubeconfig(lab.kubeconfig, "lab-admin")
    yield cluster
    cluster.close()


@pytest.fixture
def lab_ctx(lab_cluster: Cluster, lab_settings: Settings) -> FaultContext:
    """A fault context over the lab (no blast radius)."""
    return FaultContext(cluster=lab_cluster, run_id="t", extra={"settings": lab_settings}, log=lambda m: None)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A bare emulated API server with few seats (so storms get 429s) and the lab's telemetry identity."""
    from lab.apiserver.testing import running_apiserver

    with running_apiserver(tmp_path_factory.mktemp("api"), nodes=NODES, seats=4, queue_timeout=2.0,
                           service_accounts=[("telemetry", "telemetry")]) as server:
        admin = Cluster.from_kubeconfig(server.kubeconfig, "lab-admin")
        for name in NODES:
            admin.call("create node", admin.core.create_node, {
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"role": "cpu"}}})
        admin.close()
        yield server
