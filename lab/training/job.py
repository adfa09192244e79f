"""The training job: one torchrun agent per rank namespace, supervised, with metrics on loopback.

Rank 0's agent hosts the c10d rendezvous store (``--rdzv-conf=is_host=1``); the others join it
(``is_host=0``). Set-up from FAULTS.md §5: ``--local-addr``, ``GLOO_SOCKET_IFNAME``,
``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1``. torchrun restarts failed workers up to ``--max-restarts``;
an agent that exits (a non-host agent does after a fast REJECT failure) is relaunched by the
supervisor thread. Metrics (``training_*``) are served on 127.0.0.1 from the host namespace.
Everything the job starts is stopped by ``stop()``, which also removes ``torchelastic_*`` folders.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Self

from prometheus_client import CollectorRegistry, Counter, start_http_server

from lab.training.errors import JobError
from lab.training.netns import TrainingNetwork, in_netns
from lab.training.progress import Progress, ProgressReader

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class JobConfig:
    """How the job trains and restarts."""

    checkpoint_every: int = 10
    timeout_s: float = 10.0
    step_sleep_s: float = 0.05
    steps: int = 0
    max_restarts: int = 20
    rdzv_port: int = 29400
    metrics_port: int = 0
    monitor_interval_s: float = 0.5
    relaunch_delay_s: float = 1.0
    python: str = sys.executable


@dataclass
class _Agent:
    rank: int
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    launches: int = 0


class TrainingJob:
    """A running (or stopped) torchrun job across the namespaces of ``net``."""

    def __init__(self, state_dir: Path, net: TrainingNetwork, config: JobConfig | None = None) -> None:
        self.state_dir = state_dir
        self.net = net
        self.config = config or JobConfig()
        self.shared = state_dir / "shared"
        self.tmp = state_dir / "tmp"
        self.logs = state_dir / "logs"
        self.registry = CollectorRegistry()
        self.reader = ProgressReader(self.shared / "progress.jsonl", self.registry)
        self._relaunches = Counter(
            "training_agent_relaunches",
            "torchrun agents relaunched by the supervisor",
            ["rank"],
            registry=self.registry,
        )
        self._agents = [_Agent(r.rank) for r in net.ranks]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self.metrics_port = 0

    @property
    def metrics_url(self) -> str:
        """Where the job's Prometheus metrics are served."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def progress(self) -> Progress:
        """Progress so far (reads new records first)."""
        return self.reader.poll()

    def _command(self, rank: int) -> list[str]:
        c, host, me = self.config, self.net.ranks[0], self.net.ranks[rank]
        argv = [
            c.python,
            "-m",
            "torch.distributed.run",
            f"--nnodes={len(self.net.ranks)}",
            "--nproc-per-node=1",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={host.address}:{c.rdzv_port}",
            f"--rdzv-id=gdtrain-{self.net.job_id}",
            f"--rdzv-conf=is_host={1 if rank == 0 else 0}",
            f"--local-addr={me.address}",
            f"--max-restarts={c.max_restarts}",
            f"--monitor-interval={c.monitor_interval_s}",
            "-m",
            "lab.training.train",
            "--shared",
            str(self.shared),
            "--steps",
            str(c.steps),
            "--checkpoint-every",
            str(c.checkpoint_every),
            "--timeout",
            str(c.timeout_s),
            "--step-sleep",
            str(c.step_sleep_s),
        ]
        return in_netns(me.namespace, argv)

    def _env(self, rank: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TORCH", "MASTER_", "GLOO_"))}
        env.update(
            GLOO_SOCKET_IFNAME=self.net.ranks[rank].ifname,
            TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1",
            TMPDIR=str(self.tmp),
            PYTHONPATH=str(REPO_ROOT),
            PYTHONUNBUFFERED="1",
            OMP_NUM_THREADS="1",
        )
        return env

    def _launch(self, agent: _Agent) -> None:
        if agent.proc is not None:
            _signal_group(agent.proc, signal.SIGKILL)
        if agent.log is not None:
            agent.log.close()
        agent.launches += 1
        agent.log = (self.logs / f"rank{agent.rank}-launch{agent.launches}.log").open("wb")
        try:
            agent.proc = subprocess.Popen(
                self._command(agent.rank),
                env=self._env(agent.rank),
                cwd=REPO_ROOT,
                stdout=agent.log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise JobError(f"cannot start torchrun for rank {agent.rank}: {exc}") from exc

    def start(self) -> None:
        """Start the agents, the supervisor thread and the metrics endpoint."""
        for d in (self.shared, self.tmp, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        server, _thread = start_http_server(
            self.config.metrics_port, addr="127.0.0.1", registry=self.registry
        )
        self._server = server
        self.metrics_port = int(server.server_address[1])
        try:
            with self._lock:
                for agent in self._agents:
                    self._launch(agent)
        except BaseException:
            self.stop()
            raise
        self._thread = threading.Thread(
            target=self._supervise, name=f"gdtrain-{self.net.job_id}", daemon=True
        )
        self._thread.start()

    def _supervise(self) -> None:
        exited_at: dict[int, float] = {}
        while not self._stop.wait(0.25):
            self.reader.poll()
            with self._lock:
                for agent in self._agents:
                    if self._stop.is_set() or agent.proc is None or agent.proc.poll() is None:
                        continue
                    if self.config.steps and self.reader.progress.max_step >= self.config.steps:
                        continue
                    first = exited_at.setdefault(agent.rank, time.monotonic())
                    if time.monotonic() - first >= self.config.relaunch_delay_s:
                        exited_at.pop(agent.rank)
                        self._relaunches.labels(rank=str(agent.rank)).inc()
                        self._launch(agent)

    def relaunches(self) -> dict[int, int]:
        """How many times the supervisor relaunched each rank's agent."""
        return {a.rank: max(0, a.launches - 1) for a in self._agents}

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop the supervisor, every agent and its workers, the metrics server; remove torchelastic temp dirs."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            procs = [a.proc for a in self._agents if a.proc is not None]
            for proc in procs:
                _signal_group(proc, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            for proc in procs:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=10)
            for agent in self._agents:
                if agent.log is not None:
                    agent.log.close()
                    agent.log = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.reader.poll()
        for leftover in self.tmp.glob("torchelastic_*") if self.tmp.is_dir() else []:
            shutil.rmtree(leftover, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
