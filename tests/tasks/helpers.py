"""Helpers for the tasks tests: polling with a deadline and facades over the test API server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


from tasks.cluster import Cluster
from tests.conftest import poll as shared_poll

NODES = ["lab-node-0", "lab-node-1", "lab-node-2"]


def poll(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.2) -> Any:
    """Call ``predicate`` until truthy (returned) or fail at the deadline (tests.conftest.poll)."""
    return shared_poll(predicate, timeout, interval=interval)


def api_cluster(server: Any, user: str = "gameday-runner", users_dir: Path | None = None) -> Cluster:
    """A facade over the bare API server as ``user``, optionally pretending to be a lab (users file)."""
    lab = {"dir": str(users_dir), "users": str(server.log_path.parent / "apiserver-users.json")} if users_dir else None
    return Cluster.from_kubeconfig(server.kubeconfig, f"lab-{user.replace(':', '-')}", lab=lab)
