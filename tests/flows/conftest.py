"""Fixtures for the runner and flow tests: a real HTTP endpoint whose health we flip, a file-backed fault."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from blueprints.faults import Noop
from tasks.faults.base import Change, Evidence, FaultContext, Injection
from tasks.run.recorder import now


class Health:
    """A real HTTP endpoint on loopback answering 200 while healthy and 500 once flipped."""

    def __init__(self) -> None:
        self.healthy = True
        self.hits = 0
        self.delay = 0.0
        """Seconds each answer waits first (a hung endpoint, for probe timeouts)."""
        health = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                health.hits += 1
                if health.delay:
                    time.sleep(health.delay)
                code = 200 if health.healthy else 500
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if code == 200 else b"no")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/healthz"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @contextmanager
    def breaks_when(self, condition: Callable[[], bool]) -> Iterator[None]:
        """Answer 500 from the moment ``condition()`` holds (polled every 50 ms) while the block runs."""
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.05):
                if condition():
                    self.healthy = False
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def health() -> Iterator[Health]:
    """A flip-able health endpoint, shut down after the test."""
    h = Health()
    h.thread.start()
    try:
        yield h
    finally:
        h.close()


class FileFault:
    """A fault with a real, observable side effect: inject creates a file, rollback removes it."""

    kind = "noop"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, inj: Injection) -> Path:
        return self.root / f"{inj.stage}-{inj.fault_id}.injected"

    def plan(self, spec: Noop, ctx: FaultContext, *, run_id: str, stage: str, fault_id: str) -> Injection:
        """Plan creating one file."""
        return Injection(
            run_id=run_id,
            stage=stage,
            fault_id=fault_id,
            kind="noop",
            spec=spec.model_dump(mode="json"),
            summary=f"create {fault_id} marker",
            changes=[Change(action="local", object="file", undo="delete it")],
            cluster_scoped_ledger=False,
            planned_at=now(),
        )

    def inject(self, inj: Injection, ctx: FaultContext) -> Injection:
        """Create the file."""
        self._path(inj).write_text(inj.run_id)
        return inj

    def verify(self, inj: Injection, ctx: FaultContext) -> Evidence:
        """The file exists."""
        return Evidence(landed=self._path(inj).exists(), summary="marker file present")

    def rollback(self, inj: Injection, ctx: FaultContext) -> None:
        """Delete the file (idempotent)."""
        self._path(inj).unlink(missing_ok=True)

    def renew(self, inj: Injection, ctx: FaultContext) -> None:
        """Nothing to renew."""


class ListLedger:
    """A ledger kept in memory: the order of record/update calls is what the runner tests check."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.fail_on_applied = False

    def record(self, inj: Injection) -> None:
        """Remember the injection."""
        self.calls.append(("record", inj.fault_id, ""))

    def update(self, inj: Injection, state: str, error: str | None = None) -> None:
        """Remember the new state (raising OSError on 'applied' when asked to)."""
        self.calls.append(("update", inj.fault_id, state))
        if state == "applied" and self.fail_on_applied:
            raise OSError("ledger disk full")


@pytest.fixture(scope="session")
def harness() -> Iterator[None]:
    """One Prefect test server for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Only the real etcd and kube-apiserver (lab.testing.running_api) with one Node object, for the module."""
    from lab.testing import running_api

    with running_api(tmp_path_factory.mktemp("api"), nodes=["node-1"]) as api:
        yield api


@pytest.fixture
def state(tmp_path: Path, apiserver: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A gameday state dir whose lab endpoints are the API server's own endpoints.json."""
    lab = tmp_path / "state" / "lab"
    lab.mkdir(parents=True)
    (lab / "endpoints.json").write_text((Path(apiserver.state_dir) / "endpoints.json").read_text())
    monkeypatch.setenv("GAMEDAY_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("GAMEDAY_LAB_STATE_DIR", raising=False)
    monkeypatch.delenv("GAMEDAY_PROMETHEUS_URL", raising=False)
    return tmp_path / "state"
