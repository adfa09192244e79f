"""One real control plane for the runtime's live tests: no kwok node, the lab's two real nodes (``lab-node-0``,
``lab-node-1``) run by ``python -m lab.runtime --real-plane``, their pods placed by the real kube-scheduler and
Deployment controller and published by the real Endpoints controller."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from kubernetes import client

from lab.testing import LabHandle, running_control_plane
from tests.conftest import poll

REAL_NODES = ["lab-node-0", "lab-node-1"]
FAST: dict[str, Any] = {"node_lease_seconds": 4, "node_monitor_grace_seconds": 6, "node_monitor_period_seconds": 1,
                        "not_ready_toleration_seconds": 300, "unreachable_toleration_seconds": 300}
"""Leases renewed every second and NotReady 6 s after the last renewal; pods stay on a NotReady node 5 minutes,
so a node a test pauses or kills keeps its pods."""


@dataclass
class RuntimeLab:
    """The lab's handle and typed admin clients for tests."""

    handle: LabHandle
    core: client.CoreV1Api
    apps: client.AppsV1Api

    def namespace(self) -> str:
        """A fresh namespace for one test, once its default service account exists (pods need it)."""
        name = f"t-{uuid.uuid4().hex[:8]}"
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        poll(lambda: self.core.list_namespaced_service_account(name, field_selector="metadata.name=default").items,
             30, f"{name}'s default service account")
        return name

    def metrics(self) -> str:
        """The runtime's /metrics text."""
        resp = httpx.get(self.handle.endpoints["runtime_metrics"], timeout=10)
        resp.raise_for_status()
        return resp.text


@pytest.fixture(scope="session")
def rt_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeLab]:
    """One real control plane with the two real nodes, shared by the runtime's live tests."""
    with running_control_plane(tmp_path_factory.mktemp("rtlab"), nodes=0, real_nodes=len(REAL_NODES),
                               **FAST) as handle, handle.client() as api:
        yield RuntimeLab(handle, client.CoreV1Api(api), client.AppsV1Api(api))
