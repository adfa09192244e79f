"""Project-wide test settings: an isolated Prefect home, no analytics, and skip-locally/fail-in-CI helpers."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

_PREFECT_HOME = tempfile.mkdtemp(prefix="gameday-prefect-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

T = TypeVar("T")

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Tests whose verdicts need the CPU to themselves (a 500-node incident replay, the CPU training job and the GPU
# blueprints that partition it). Under `pytest -n 2 --dist loadgroup --no-loadscope-reorder` (the README's
# command) they run first and one after another on one worker while the other worker takes every other module;
# each other module is one group, so its module-scoped fixtures (labs, Prefect servers) are built once.
TIMING_SENSITIVE = ("tests/e2e/test_replay.py", "tests/e2e/test_gpu_blueprints.py", "tests/lab/training/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group tests for pytest-xdist (one group per module, one for the timing-sensitive ones) and run those first."""
    root = Path(config.rootpath)

    def where(item: pytest.Item) -> str:
        return item.path.relative_to(root).as_posix()

    sensitive = [item for item in items if where(item).startswith(TIMING_SENSITIVE)]
    others = [item for item in items if not where(item).startswith(TIMING_SENSITIVE)]
    for item in sensitive:
        item.add_marker(pytest.mark.xdist_group("timing-sensitive"))
    for item in others:
        item.add_marker(pytest.mark.xdist_group(where(item)))
    items[:] = sensitive + others


def require(condition: bool, reason: str) -> None:
    """Skip the calling test locally when ``condition`` is false; in CI (CI=true) fail instead."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"missing in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def require_root() -> None:
    """Tests that make network namespaces or iptables rules need root."""
    require(os.geteuid() == 0, "needs root (network namespaces, iptables): run as root")


def poll(
    predicate: Callable[[], T | None], timeout: float, what: str = "condition", interval: float = 0.2
) -> T:
    """Call ``predicate`` until it returns something truthy (returned), or fail the test naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
