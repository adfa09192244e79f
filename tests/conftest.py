"""Project-wide test settings: an isolated Prefect home, no analytics, and skip-locally/fail-in-CI helpers."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

_PREFECT_HOME = tempfile.mkdtemp(prefix="gameday-prefect-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

T = TypeVar("T")

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


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
