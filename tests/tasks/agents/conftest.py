"""Fixtures for the runner side of agent-held faults: a real kube-apiserver with GPU nodes whose agents run for real."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.testing import AgentProcess, running_agent
from lab.testing import LabHandle, running_api
from tasks.agent_client import AgentClient
from tasks.cluster import Cluster
from tasks.faults.base import FaultContext
from tests.agents.conftest import install_agent_rbac

AGENT_SA = "system:serviceaccount:gameday:gameday-agent"
GPU_LABELS = {"nvidia.com/gpu.present": "true"}


@pytest.fixture(scope="session")
def agent_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    """A real kube-apiserver: TokenReview for the agents, nodes for the runner (each test creates its own)."""
    with running_api(tmp_path_factory.mktemp("agent-api")) as handle:
        install_agent_rbac(handle)
        yield handle


@pytest.fixture
def admin(agent_api: LabHandle) -> Iterator[Cluster]:
    """An admin facade for arranging nodes (deleted again afterwards)."""
    from kubernetes import client

    cluster = Cluster(agent_api.client(), user="admin")
    yield cluster
    for n in cluster.list_nodes():
        client.CoreV1Api(cluster.api_client).delete_node(n.metadata.name)
    cluster.close()


@pytest.fixture
def runner_logs() -> list[str]:
    """What the runner's context logs."""
    return []


@pytest.fixture
def runner_ctx(agent_api: LabHandle, runner_logs: list[str]) -> Iterator[FaultContext]:
    """The runner's context: its own identity, and an AgentClient carrying its token."""
    cluster = Cluster(agent_api.client(token=agent_api.runner_token), user="gameday-runner")
    logs = runner_logs
    ctx = FaultContext(cluster=cluster, run_id="run-t", agents=AgentClient(cluster, agent_api.runner_token),
                       log=logs.append)
    yield ctx
    cluster.close()


AddNode = Callable[..., AgentProcess]


@pytest.fixture
def gpu_node(tmp_path: Path, agent_api: LabHandle, admin: Cluster) -> Iterator[AddNode]:
    """Start an agent for a node and register the node with its endpoint annotation (plus extra annotations)."""
    from kubernetes import client

    stack: list[Any] = []

    def add(name: str, annotations: dict[str, str] | None = None, **agent_kw: Any) -> AgentProcess:
        cm = running_agent(tmp_path, name, agent_api.url, agent_api.token_for(AGENT_SA), api_ca_file=agent_api.ca_file,
                           **agent_kw)
        agent = cm.__enter__()
        stack.append(cm)
        meta = {"name": name, "labels": GPU_LABELS,
                "annotations": {"gameday.dev/agent-endpoint": agent.url, **(annotations or {})}}
        client.CoreV1Api(admin.api_client).create_node({"apiVersion": "v1", "kind": "Node", "metadata": meta})
        return agent

    try:
        yield add
    finally:
        for cm in reversed(stack):
            cm.__exit__(None, None, None)
