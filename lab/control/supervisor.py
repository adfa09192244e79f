"""``python -m lab.control.supervisor``: run one component as a kubelet runs a static pod's container.

The supervisor starts the command, optionally inside a memory cgroup of its own (cgroup v1,
``<root>/<name>-<pid>`` with ``memory.limit_in_bytes``; the child joins it before it executes, so every byte it
allocates counts: a shell joins it and executes the command), and restarts it whenever it exits, after a back-off like CrashLoopBackOff's: ``--backoff``
seconds, doubled after each exit up to ``--backoff-max``, and back to ``--backoff`` once the child has run
``--backoff-reset`` seconds. An exit the kernel's OOM killer caused (the cgroup's ``oom_kill`` count rose) is
recorded as ``OOMKilled``. The supervisor serves its own metrics (``lab_component_restarts_total``,
``lab_component_oom_kills_total``, ``lab_component_memory_limit_bytes``, ``lab_component_memory_usage_bytes``,
``lab_component_up``) and keeps a JSON status file; SIGTERM stops the child (SIGKILL after a grace) and removes
the cgroup.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

CGROUP_ROOT = Path("/sys/fs/cgroup/memory")


@dataclass
class Status:
    """What the supervisor knows of its child (written to the status file after every change)."""

    name: str
    pid: int = 0
    restarts: int = 0
    oom_kills: int = 0
    last_exit: str = ""
    started_at: float = 0.0
    history: list[dict[str, object]] = field(default_factory=list)


class MemoryCgroup:
    """A cgroup v1 memory controller directory with a limit; removed once empty."""

    def __init__(self, root: Path, name: str, limit_bytes: int) -> None:
        self.path = root / f"{name}-{os.getpid()}"
        self.path.mkdir()
        (self.path / "memory.limit_in_bytes").write_text(str(limit_bytes))
        self.limit_bytes = int((self.path / "memory.limit_in_bytes").read_text())

    def wrap(self, command: list[str]) -> list[str]:
        """The command, run by a shell that first moves itself into the cgroup and then executes it (same PID)."""
        procs = str(self.path / "cgroup.procs")
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', procs, *command]

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer killed in this cgroup."""
        for line in (self.path / "memory.oom_control").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def usage_bytes(self) -> int:
        """The cgroup's current memory usage."""
        return int((self.path / "memory.usage_in_bytes").read_text())

    def remove(self) -> None:
        """Remove the cgroup directory (it must hold no process)."""
        deadline = time.monotonic() + 5
        while True:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


class Supervisor:
    """Keeps one command running, with back-off between restarts."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.command: list[str] = args.command
        self.status = Status(args.name)
        self.stopping = threading.Event()
        self.cgroup = (MemoryCgroup(Path(args.cgroup_root), args.name, int(args.memory_limit_mib * 2**20))
                       if args.memory_limit_mib > 0 else None)
        registry = CollectorRegistry()
        labels = {"component": args.name}
        self.restarts = Counter("lab_component_restarts", "Restarts of the component by its supervisor",
                                ["component"], registry=registry).labels(**labels)
        self.oom = Counter("lab_component_oom_kills", "Exits of the component caused by the OOM killer",
                           ["component"], registry=registry).labels(**labels)
        self.up = Gauge("lab_component_up", "Whether the component's process is running", ["component"],
                        registry=registry).labels(**labels)
        limit = Gauge("lab_component_memory_limit_bytes", "The component's memory cgroup limit (0: none)",
                      ["component"], registry=registry).labels(**labels)
        limit.set(self.cgroup.limit_bytes if self.cgroup else 0)
        usage = Gauge("lab_component_memory_usage_bytes", "The component's memory cgroup usage",
                      ["component"], registry=registry).labels(**labels)
        usage.set_function(lambda: float(self.cgroup.usage_bytes()) if self.cgroup else 0.0)
        self.server, _ = start_http_server(0, "127.0.0.1", registry=registry)
        self.metrics_url = f"http://127.0.0.1:{self.server.server_port}/metrics"
        self.proc: subprocess.Popen[bytes] | None = None

    def _write_status(self) -> None:
        path = Path(self.args.status_file)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**asdict(self.status), "metrics": self.metrics_url,
                                   "cgroup": str(self.cgroup.path) if self.cgroup else None}))
        tmp.replace(path)

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = self.cgroup.wrap(self.command) if self.cgroup else self.command
        return subprocess.Popen(command, stdin=subprocess.DEVNULL)

    def run(self) -> int:
        """Run until SIGTERM; returns the exit code of the supervisor."""
        backoff = self.args.backoff
        while not self.stopping.is_set():
            oom_before = self.cgroup.oom_kills() if self.cgroup else 0
            self.proc = self._spawn()
            self.status.pid, self.status.started_at = self.proc.pid, time.time()
            self.up.set(1)
            self._write_status()
            code = self.proc.wait()
            self.up.set(0)
            if self.stopping.is_set():
                break
            ran = time.time() - self.status.started_at
            oom = bool(self.cgroup and self.cgroup.oom_kills() > oom_before)
            reason = "OOMKilled" if oom else (f"signal {-code}" if code < 0 else f"exit code {code}")
            self.status.last_exit = reason
            self.status.history.append({"at": time.time(), "ran_s": round(ran, 3), "reason": reason})
            if oom:
                self.status.oom_kills += 1
                self.oom.inc()
            if ran >= self.args.backoff_reset:
                backoff = self.args.backoff
            print(f"supervisor: {self.args.name} {reason} after {ran:.1f} s; restarting in {backoff:g} s",
                  file=sys.stderr, flush=True)
            self._write_status()
            if self.stopping.wait(backoff):
                break
            backoff = min(backoff * 2, self.args.backoff_max)
            self.status.restarts += 1
            self.restarts.inc()
        self._stop_child()
        if self.cgroup:
            self.cgroup.remove()
        self.server.shutdown()
        return 0

    def _stop_child(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(self.args.grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: stop restarting and stop the child."""
        self.stopping.set()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The supervisor's options; the command follows ``--``."""
    parser = argparse.ArgumentParser(prog="python -m lab.control.supervisor", description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--status-file", required=True)
    parser.add_argument("--memory-limit-mib", type=float, default=0.0)
    parser.add_argument("--cgroup-root", default=str(CGROUP_ROOT))
    parser.add_argument("--backoff", type=float, default=10.0)
    parser.add_argument("--backoff-max", type=float, default=300.0)
    parser.add_argument("--backoff-reset", type=float, default=600.0)
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("no command to supervise (give it after --)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        supervisor = Supervisor(args)
    except OSError as err:
        print(f"supervisor: cannot create the memory cgroup under {args.cgroup_root}: {err}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, supervisor.on_signal)
    signal.signal(signal.SIGINT, supervisor.on_signal)
    return supervisor.run()


if __name__ == "__main__":
    raise SystemExit(main())
