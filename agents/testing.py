"""Start a real agent process for tests and the lab: :func:`running_agent` / :class:`AgentProcess`.

Usage::

    from agents.testing import AgentProcess, running_agent

    with running_agent(tmp_path, node="gpu-1", api_url=api.url, api_token=api.admin_token,
                       allow_users=["gameday-runner"], nvml="fake", gpu_count=2) as agent:
        agent.url          # http://127.0.0.1:PORT
        agent.kmsg_path    # tmp_path/"gpu-1"/kmsg (the stand-in kernel log)
        agent.nvml_state   # tmp_path/"gpu-1"/nvml.json (fake GPUs' state, DeviceList JSON)
        agent.kill()       # SIGKILL (state file kept); agent.start() starts it again with the same files

``authorize="sar"`` runs the agent with ``--authorize sar`` and no allow-list (``"any"``/``"allowlist"``
keep ``allow_users``). Extra CLI flags go in ``extra_args`` (e.g. ``["--netns", "gdtest-ab12", "--allow-cidr", "192.0.2.0/24"]``).
The agent's stderr goes to ``<dir>/agent.log``. Leaving the block stops the process (SIGTERM, which
reverts what it holds; SIGKILL after 10 s).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT_S = 20.0


class AgentStartError(RuntimeError):
    """The agent process did not become ready."""


@dataclass
class AgentProcess:
    """One agent subprocess and its files; restartable with the same state file."""

    workdir: Path
    node: str
    api_url: str
    api_token: str
    allow_users: list[str] = field(default_factory=lambda: ["gameday-runner"])
    nvml: str = "fake"
    gpu_count: int = 2
    extra_args: list[str] = field(default_factory=list)
    python: str = sys.executable
    authorize: str | None = None
    api_ca_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""

    @property
    def kmsg_path(self) -> Path:
        """The stand-in kernel log this agent writes XID lines to."""
        return self.workdir / "kmsg"

    @property
    def state_file(self) -> Path:
        """The agent's state file."""
        return self.workdir / "state.json"

    @property
    def nvml_state(self) -> Path:
        """The fake GPUs' state (JSON, DeviceList shape)."""
        return self.workdir / "nvml.json"

    @property
    def log_path(self) -> Path:
        """Where the agent's stderr goes."""
        return self.workdir / "agent.log"

    def argv(self) -> list[str]:
        """The command line."""
        token_file = self.workdir / "agent-token"
        token_file.write_text(self.api_token)
        token_file.chmod(0o600)
        args = [self.python, "-m", "agents", "--listen", "127.0.0.1:0", "--node", self.node,
                "--api-url", self.api_url, "--api-token-file", str(token_file),
                "--kmsg-path", str(self.kmsg_path), "--state-file", str(self.state_file),
                "--nvml", self.nvml, "--gpu-count", str(self.gpu_count), "--nvml-state-file", str(self.nvml_state),
                "--ready-file", str(self.workdir / "ready")]
        if self.api_ca_file is not None:
            args += ["--api-ca-file", str(self.api_ca_file)]
        if self.authorize is not None:
            args += ["--authorize", self.authorize]
        for user in self.allow_users if self.authorize != "sar" else []:
            args += ["--allow-user", user]
        return args + self.extra_args

    def start(self) -> str:
        """Start the process and wait until it listens; returns its URL."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        ready = self.workdir / "ready"
        ready.unlink(missing_ok=True)
        root = Path(__file__).resolve().parents[1]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(root))
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AgentStartError(f"agent exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            if ready.exists():
                self.url = ready.read_text().strip()
                return self.url
            time.sleep(0.02)
        self.stop()
        raise AgentStartError(f"agent did not become ready in {START_TIMEOUT_S:g}s: {self.log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the agent (what it holds stays in place and in the state file)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (the agent reverts what it holds), SIGKILL after 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


@contextmanager
def running_agent(tmp_path: Path, node: str, api_url: str, api_token: str, *, allow_users: list[str] | None = None,
                  nvml: str = "fake", gpu_count: int = 2, extra_args: list[str] | None = None,
                  authorize: str | None = None, api_ca_file: Path | None = None) -> Iterator[AgentProcess]:
    """Start an agent in ``tmp_path/<node>``, yield it, always stop it (``api_ca_file``: the API server's CA)."""
    agent = AgentProcess(tmp_path / node, node, api_url, api_token, allow_users or ["gameday-runner"], nvml,
                         gpu_count, extra_args or [], authorize=authorize, api_ca_file=api_ca_file)
    try:
        agent.start()
        yield agent
    finally:
        agent.stop()
