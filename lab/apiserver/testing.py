"""Test helper: run an emulated API server as a subprocess for the length of a ``with`` block.

Usage (pytest)::

    from lab.apiserver.testing import running_apiserver

    def test_something(tmp_path):
        with running_apiserver(tmp_path, nodes=["node-1"], seats=60) as api:
            api.url            # "http://127.0.0.1:PORT" (plain HTTP, for lab components)
            api.https_url      # "https://127.0.0.1:PORT2" (self-signed; api.ca_file), for kubectl
            api.admin_token    # system:masters (APF exempt)
            api.runner_token   # gameday-runner (group gameday:runners)
            api.kubeconfig     # Path (https_url + CA); contexts "lab-admin" (current),
                               # "lab-gameday-runner", "lab-system-node-node-1", ...
            api.users          # token -> {"username", "uid", "groups"} (the users file)
            api.token_for("system:node:node-1")
            api.client()       # kubernetes.client.ApiClient for admin (or client(token=...))

``poll_until(predicate, timeout)`` is the deadline-bounded wait to use instead of sleeps.

Keyword arguments: ``service_accounts=[(ns, name), ...]`` adds service-account identities,
``extra_users={"name": [groups]}`` adds more users, ``queue_timeout``, ``history``,
``anonymous_metrics``, ``bookmark_interval`` and ``sa_secret_file`` (signed service-account tokens,
``lab.apiserver.users.sa_token``) map to the CLI flags; ``extra_args`` are appended as they are. The server's stdout/stderr go to
``tmp_path/apiserver.log``. On exit the process is terminated by its PID (SIGTERM, then SIGKILL
after 5 s) even when the block raised.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.apiserver.users import ADMIN, RUNNER, make_users, token_for, write_kubeconfig, write_users

START_TIMEOUT = 30.0


class ApiServerStartError(RuntimeError):
    """The API server subprocess did not become ready."""


@dataclass
class RunningApiServer:
    """A started API server subprocess and the identities to reach it."""

    url: str
    pid: int
    users: dict[str, dict[str, Any]]
    admin_token: str
    runner_token: str
    kubeconfig: Path
    log_path: Path
    https_url: str
    ca_file: Path

    def token_for(self, username: str) -> str:
        """The bearer token of a username."""
        return token_for(self.users, username)

    def client(self, token: str | None = None) -> Any:
        """A ``kubernetes.client.ApiClient`` for this server (admin unless a token is given)."""
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        cfg.api_key = {"authorization": f"Bearer {token or self.admin_token}"}
        return client.ApiClient(cfg)


def poll_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Call ``predicate`` until it returns a truthy value (returned) or raise TimeoutError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)


def wait_ready(url: str, deadline: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll /readyz until it answers ok or the deadline passes."""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ApiServerStartError(f"apiserver exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise ApiServerStartError(f"apiserver at {url} not ready in time")


def _read_ready_file(path: Path, proc: subprocess.Popen[bytes], deadline: float, log: Path) -> dict[str, Any]:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ApiServerStartError(
                f"apiserver exited with code {proc.returncode}: {log.read_text()[-2000:]}"
            )
        if path.exists():
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        time.sleep(0.05)
    raise ApiServerStartError("apiserver did not write its ready file in time")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@contextmanager
def running_apiserver(
    tmp_path: Path,
    nodes: list[str] | None = None,
    seats: int = 60,
    service_accounts: list[tuple[str, str]] | None = None,
    extra_users: dict[str, list[str]] | None = None,
    queue_timeout: float = 15.0,
    history: int = 10_000,
    anonymous_metrics: bool = False,
    bookmark_interval: float = 5.0,
    sa_secret_file: Path | None = None,
    extra_args: list[str] | None = None,
) -> Iterator[RunningApiServer]:
    """Start ``python -m lab.apiserver`` on a free port, wait for /readyz, yield, then kill it."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    users = make_users(nodes or [], service_accounts, extra_users)
    users_file = tmp_path / "apiserver-users.json"
    write_users(users_file, users)
    ready_file = tmp_path / "apiserver-ready.json"
    ready_file.unlink(missing_ok=True)
    log_path = tmp_path / "apiserver.log"
    cmd = [
        sys.executable,
        "-m",
        "lab.apiserver",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--users",
        str(users_file),
        "--seats",
        str(seats),
        "--queue-timeout",
        str(queue_timeout),
        "--history",
        str(history),
        "--bookmark-interval",
        str(bookmark_interval),
        "--parent-pid",
        str(os.getpid()),
        "--ready-file",
        str(ready_file),
        "--tls-dir",
        str(tmp_path / "apiserver-tls"),
    ]
    if anonymous_metrics:
        cmd.append("--anonymous-metrics")
    if sa_secret_file is not None:
        cmd += ["--sa-secret-file", str(sa_secret_file)]
    cmd += extra_args or []
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(root))
    try:
        deadline = time.monotonic() + START_TIMEOUT
        ready = _read_ready_file(ready_file, proc, deadline, log_path)
        url = str(ready["url"])
        wait_ready(url, deadline, proc)
        admin = token_for(users, ADMIN)
        tokens = {ADMIN: admin, RUNNER: token_for(users, RUNNER)}
        for info in users.values():
            tokens.setdefault(info["username"], token_for(users, info["username"]))
        https_url, ca_file = str(ready["https_url"]), Path(ready["ca_file"])
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", https_url, tokens, ca_file=ca_file)
        yield RunningApiServer(
            url, proc.pid, users, admin, tokens[RUNNER], kubeconfig, log_path, https_url, ca_file
        )
    finally:
        _stop(proc)
