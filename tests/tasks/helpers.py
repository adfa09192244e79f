"""Helpers for the tasks tests: polling with a deadline and facades over the test API server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tasks.cluster import Cluster, read_lab_endpoints
from tests.conftest import poll as shared_poll

NODES = ["lab-node-0", "lab-node-1", "lab-node-2"]


def poll(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.2) -> Any:
    """Call ``predicate`` until truthy (returned) or fail at the deadline (tests.conftest.poll)."""
    return shared_poll(predicate, timeout, interval=interval)


def api_cluster(api: Any, context: str = "lab", as_lab: bool = False) -> Cluster:
    """A facade over the test API server in one of its kubeconfig's contexts (``lab``: gameday-runner;
    ``lab-admin``), optionally seeing it as the lab target does (its endpoints.json), as the client storm needs to
    find the lab's telemetry identity."""
    lab = read_lab_endpoints(Path(api.state_dir)) if as_lab else None
    return Cluster.from_kubeconfig(api.kubeconfig, context, lab=lab)
