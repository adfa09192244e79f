"""Test helpers for the runtime alone: start a runtime subprocess beside an API server.

``running_runtime(tmp_path, api_url, users_file, nodes=3, time_scale=10)`` yields a handle with
the runtime's URL and PID and control helpers (pause/resume/kill/revive a node); it stops the
process by PID on exit. The whole-lab helper is ``lab.testing.running_lab``.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.runtime.errors import LabError
from lab.runtime.procs import start_runtime, stop_pid


class WaitTimeout(LabError):
    """A polled condition did not hold in time."""


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition", interval: float = 0.1) -> Any:
    """Call check until it returns something truthy and return that; WaitTimeout after timeout seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise WaitTimeout(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


@dataclass
class RunningRuntime:
    """A runtime subprocess."""

    url: str
    pid: int
    log_path: Path

    def control(self, node: str, action: str) -> dict[str, Any]:
        """POST a control action (pause, resume, kill, revive) for a node."""
        req = urllib.request.Request(f"{self.url}/control/nodes/{node}/{action}", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10) as resp:
            result: dict[str, Any] = json.loads(resp.read())
            return result

    def metrics(self) -> str:
        """The runtime's /metrics text."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as resp:
            return str(resp.read().decode())


@contextmanager
def running_runtime(
    state_dir: Path, api_url: str, users_file: Path, nodes: int = 3, gpu_nodes: int = 0,
    time_scale: float = 10.0, eviction_timeout: float = 300.0, slot: int = 0, sa_secret_file: Path | None = None,
) -> Iterator[RunningRuntime]:
    """Run a runtime subprocess for the length of the block; always stopped by PID."""
    state_dir.mkdir(parents=True, exist_ok=True)
    proc, info = start_runtime(state_dir, api_url, users_file, nodes, gpu_nodes, time_scale,
                               eviction_timeout=eviction_timeout, slot=slot, sa_secret_file=sa_secret_file)
    try:
        yield RunningRuntime(url=info["url"], pid=proc.pid, log_path=state_dir / "runtime.log")
    finally:
        stop_pid(proc.pid)
