"""End-to-end fixtures: a lab and a Prefect server per module, and a helper running `gameday`.

:func:`prefect_stack` starts a real Prefect server + process worker + `prefect deploy --all` + a small lab on the real
control plane (tests/e2e/test_prefect_ops.py); :func:`e2e_real` is that lab with a GPU node and a Prefect test server
for a module (tests/e2e/test_fault_matrix.py). Everything is started as real processes in their own sessions and stopped by
PID: runs are cancelled through the API first (a stopped worker would leave them RUNNING), then the worker gets
SIGINT (a backgrounded worker ignores SIGTERM), then the server; anything still alive after a bound is SIGKILLed
by its process group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import poll as shared_poll

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

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start `gameday ARGS` in its own process group (so the test can SIGKILL exactly it); ``env`` replaces
        this lab's environment when given."""
        return subprocess.Popen(
            [sys.executable, "-m", "flows.cli", *args],
            cwd=ROOT,
            env=self.env if env is None else env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def poll(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll until ``predicate`` is truthy, or fail naming ``what`` (tests.conftest.poll)."""
    return shared_poll(predicate, timeout, what, interval)


def gameday_env(state: Path, prefect_api_url: str) -> dict[str, str]:
    """The environment `gameday` subprocesses run with: this state dir (the lab under it), this Prefect server."""
    env = {**os.environ, "GAMEDAY_STATE_DIR": str(state), "PREFECT_API_URL": prefect_api_url,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "COLUMNS": "200"}
    env.pop("GAMEDAY_LAB_STATE_DIR", None)
    env.pop("GAMEDAY_PROMETHEUS_URL", None)
    return env


REAL_FAST: dict[str, Any] = {"node_lease_seconds": 8, "node_monitor_grace_seconds": 12,
                             "node_monitor_period_seconds": 2}
"""The real plane's node timings in e2e labs: leases renewed every 2 s, NotReady 12 s after the last renewal."""


@pytest.fixture(scope="module")
def e2e_real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    """The real control plane (one kwok node, two real lab nodes, one GPU node with its agent, gameday's janitor as a
    pod; root) plus a Prefect test server that `gameday` subprocesses use, for one module."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    from lab.testing import running_control_plane
    from tests.conftest import require

    require(os.geteuid() == 0, "the real plane's own nodes (pod network, sandboxes) need root")
    state = tmp_path_factory.mktemp("gameday-state-real")
    with prefect_test_harness(server_startup_timeout=60):
        env = gameday_env(state, str(PREFECT_API_URL.value()))
        with running_control_plane(state / "lab", nodes=1, real_nodes=2, gpu_nodes=1, janitor=True,
                                   **REAL_FAST) as lab:
            yield E2E(lab, state, env)


PREFECT = [sys.executable, "-m", "prefect"]
POOL = "gameday-process"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll ``predicate`` until truthy; AssertionError naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Ops:
    """The running stack: API client, lab handle, state dir, environment and deployment ids by name."""

    api: httpx.Client
    url: str
    lab: Any
    state: Path
    env: dict[str, str]
    deployments: dict[str, str]
    logs: Path
    worker: subprocess.Popen[bytes] | None = None

    def start_worker(self) -> None:
        """Start the process worker (SIGINT restored, own session) and remember it for stopping by PID."""
        self.worker = _spawn(
            [*PREFECT, "worker", "start", "--pool", POOL, "--name", "e2e-worker"],
            self.env,
            self.logs / "worker.log",
        )

    def crash_worker(self, run_id: str) -> None:
        """SIGKILL the worker and the run's flow process (its infrastructure PID), as a machine crash would."""
        assert self.worker is not None
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait(timeout=30)
        infra = str(self.flow_run(run_id).get("infrastructure_pid") or "")
        pid = int(infra.rsplit(":", 1)[-1])
        try:
            os.killpg(pid, signal.SIGKILL)  # the flow process leads its own group, a child of the worker
        except ProcessLookupError:
            pass
        wait_until(lambda: not _alive(pid), 30, f"flow process {pid} to die")

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One API request, retried (bounded) while the server answers 503 (its SQLite database is busy)."""
        for _ in range(20):
            r = self.api.request(method, path, **kwargs)
            if r.status_code != 503:
                return r
            time.sleep(0.5)
        return r

    def run_deployment(self, name: str, params: dict[str, Any]) -> str:
        """Create a flow run of ``run-campaign/<name>`` with ``params`` (merged over the deployment's); its id."""
        r = self.call(
            "POST",
            f"/deployments/{self.deployments[name]}/create_flow_run",
            json={"parameters": {"params": params}},
        )
        r.raise_for_status()
        return str(r.json()["id"])

    def flow_run(self, run_id: str) -> dict[str, Any]:
        """The flow run as the API returns it."""
        r = self.call("GET", f"/flow_runs/{run_id}")
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data

    def state_of(self, run_id: str) -> str:
        """The run's state type (PENDING, RUNNING, PAUSED, COMPLETED, ...)."""
        return str((self.flow_run(run_id).get("state") or {}).get("type"))

    def wait_state(self, run_id: str, wanted: set[str], timeout: float) -> dict[str, Any]:
        """Wait until the run is in one of ``wanted`` (fails early if it ends elsewhere)."""

        def check() -> dict[str, Any] | None:
            run = self.flow_run(run_id)
            kind = (run.get("state") or {}).get("type")
            if kind in wanted:
                return run
            if kind in FINAL:
                raise AssertionError(
                    f"run ended {kind}: {(run.get('state') or {}).get('message')}\n{self.tail()}"
                )
            return None

        return dict(wait_until(check, timeout, f"run {run_id} to be {sorted(wanted)}"))

    def cancel(self, run_id: str) -> None:
        """Ask for cancellation, as the UI's Cancel button does."""
        r = self.call(
            "POST", f"/flow_runs/{run_id}/set_state", json={"state": {"type": "CANCELLING"}, "force": True}
        )
        r.raise_for_status()

    def cancel_all(self, timeout: float = 60) -> None:
        """Cancel every unfinished run and wait (bounded) for them to end."""
        r = self.call(
            "POST", "/flow_runs/filter", json={"flow_runs": {"state": {"type": {"not_any_": sorted(FINAL)}}}}
        )
        ids = [x["id"] for x in r.json()] if r.is_success else []
        for i in ids:
            self.cancel(i)
        for i in ids:
            try:
                wait_until(lambda i=i: self.state_of(i) in FINAL, timeout, f"run {i} to end")
            except AssertionError:
                pass

    def tail(self, n: int = 4000) -> str:
        """The end of the worker's log (for failure messages)."""
        p = self.logs / "worker.log"
        return p.read_text(errors="replace")[-n:] if p.exists() else ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    try:
        return subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_sigint,
        )
    finally:
        out.close()


def _stop(proc: subprocess.Popen[bytes], first: signal.Signals, grace: float) -> None:
    """Stop one process we started: ``first`` to its PID, then SIGKILL to its process group after ``grace``."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, first)
            proc.wait(timeout=grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what it spawned
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(timeout=10)


def _cli(args: list[str], env: dict[str, str], timeout: float = 180) -> str:
    proc = subprocess.run(
        [*PREFECT, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"prefect {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


@contextmanager
def prefect_stack(base: Path) -> Iterator[Ops]:
    """Server, lab (the real control plane with two real nodes; root), work pool, `prefect deploy --all`, worker;
    everything stopped by PID afterwards."""
    from lab.testing import running_control_plane
    from tests.conftest import require

    require(os.geteuid() == 0, "the real plane's own nodes (pod network, sandboxes) need root")

    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    home, state, logs = base / "prefect-home", base / "state", base / "logs"
    for d in (home, state, logs):
        d.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GAMEDAY_", "PREFECT_"))}
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            "PREFECT_LOGGING_LEVEL": "INFO",
            "PREFECT_UI_API_URL": url,
            "GAMEDAY_STATE_DIR": str(state),
            "GAMEDAY_CHECKOUT": str(ROOT),
        }
    )
    with ExitStack() as stack:
        server = _spawn(
            [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env,
            logs / "server.log",
        )
        stack.callback(_stop, server, signal.SIGINT, 20)
        lab = stack.enter_context(running_control_plane(state / "lab", nodes=1, real_nodes=2, **REAL_FAST))
        api = stack.enter_context(httpx.Client(base_url=url, timeout=30))

        def healthy() -> bool:
            if server.poll() is not None:
                raise AssertionError((logs / "server.log").read_text()[-3000:])
            try:
                return api.get("/health").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 120, "prefect server /api/health")
        _cli(["work-pool", "create", POOL, "--type", "process", "--overwrite"], env)
        _cli(["--no-prompt", "deploy", "--all"], env, timeout=300)
        deps = api.post("/deployments/filter", json={}).json()
        ids = {d["name"]: d["id"] for d in deps}
        ops = Ops(api, url, lab, state, env, ids, logs)
        ops.start_worker()
        stack.callback(lambda: ops.worker is not None and _stop(ops.worker, signal.SIGINT, 20))
        stack.callback(ops.cancel_all)  # runs before the worker is stopped (callbacks unwind in reverse)
        yield ops
