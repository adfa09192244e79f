"""Helpers for the tasks tests: polling with a deadline and facades over the test API server."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tasks.cluster import Cluster

NODES = ["node-0", "node-1", "node-2"]


def poll(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.2) -> Any:
    """Call ``predicate`` until truthy (returned) or fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


def api_cluster(server: Any, user: str = "gameday-runner", users_dir: Path | None = None) -> Cluster:
    """A facade over the bare API server as ``user``, optionally pretending to be a lab (users file)."""
    lab = {"dir": str(users_dir), "users": str(server.log_path.parent / "apiserver-users.json")} if users_dir else None
    return Cluster.from_kubeconfig(server.kubeconfig, f"lab-{user.replace(':', '-')}", lab=lab)
