"""End-to-end fixtures: one lab and one Prefect server for the session, and a helper running `gameday`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class E2E:
    """The lab, the gameday state dir, and the environment `gameday` subprocesses run with."""

    lab: Any
    state: Path
    env: dict[str, str]

    def gameday(
        self, *args: str, timeout: float = 240, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `gameday ARGS` to completion (bounded) and return its result."""
        return subprocess.run(
            [sys.executable, "-m", "flows.cli", *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """Start `gameday ARGS` in its own process group (so the test can SIGKILL exactly it)."""
        return subprocess.Popen(
            [sys.executable, "-m", "flows.cli", *args],
            cwd=ROOT,
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def poll(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll until ``predicate`` returns something truthy, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    """A running lab (lab/testing.py) plus a Prefect test server that `gameday` subprocesses use."""
    from tests.conftest import require

    try:
        from lab.testing import running_lab
    except ImportError as e:  # pragma: no cover - the lab is part of this repository
        require(False, f"the lab cannot be imported: {e}")
        raise
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    state = tmp_path_factory.mktemp("gameday-state")
    with prefect_test_harness(server_startup_timeout=60):
        env = {
            **os.environ,
            "GAMEDAY_STATE_DIR": str(state),
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "COLUMNS": "200",
        }
        env.pop("GAMEDAY_LAB_STATE_DIR", None)
        env.pop("GAMEDAY_PROMETHEUS_URL", None)
        with running_lab(state / "lab", nodes=3, gpu_nodes=1, time_scale=10) as lab:
            yield E2E(lab, state, env)
