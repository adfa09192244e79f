"""Child processes of the lab: spawning in their own session, ready files, PID records, stopping by PID."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from lab.errors import LabStartError

REPO_ROOT = Path(__file__).resolve().parents[1]


def child_env() -> dict[str, str]:
    """The environment for lab subprocesses: this checkout first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def wait_ready_file(path: Path, proc: subprocess.Popen[bytes], timeout: float, what: str) -> dict[str, Any]:
    """Poll for a {"url","pid"} ready file written by a child; LabStartError if it dies or is late."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LabStartError(f"{what} exited with code {proc.returncode} before it was ready")
        if path.exists():
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        time.sleep(0.05)
    raise LabStartError(f"{what} not ready within {timeout:.0f} s")


def _signal(pid: int, sig: int) -> None:
    """Signal a session leader's whole group (even when the leader itself is gone: what it started may still
    hold its group), or just the process when it leads none; ProcessLookupError when nothing is left."""
    try:
        leader = os.getpgid(pid) == pid
    except ProcessLookupError:
        leader = True
    except PermissionError:
        leader = False
    if leader:
        try:
            os.killpg(pid, sig)
            return
        except ProcessLookupError:
            pass
    os.kill(pid, sig)


def _group_alive(pid: int) -> bool:
    """Whether any process is left in the process group led (once) by pid; zombies (exited, not yet reaped by a
    parent that is not us, e.g. the test that started the lab while another process stops it) do not count."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for proc in psutil.process_iter(["status"]):
        with contextlib.suppress(ProcessLookupError, psutil.Error):
            if os.getpgid(proc.pid) == pid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
    return False


def _reap(pid: int) -> bool:
    """True when pid is gone (reaping it if it is our child)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return True
    except ChildProcessError:
        pass
    return not pid_alive(pid)


def stop_pid(pid: int, grace: float = 10.0) -> None:
    """SIGTERM a process (and its group), SIGKILL after grace seconds; no error if it is gone."""
    try:
        _signal(pid, signal.SIGTERM)
    except ProcessLookupError:
        _reap(pid)
        return

    def gone() -> bool:
        return _reap(pid) and not _group_alive(pid)

    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if gone():
            return
        time.sleep(0.05)
    try:
        _signal(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not gone():
        time.sleep(0.05)


async def stop_group(proc: asyncio.subprocess.Process | None, grace: float) -> None:
    """SIGTERM an asyncio child's process group, SIGKILL it after ``grace`` seconds; nothing for None or exited."""
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _pids_file(state: Path) -> Path:
    return state / "pids.json"


def read_pids(state: Path) -> dict[str, int]:
    """The component PIDs recorded in a lab's state dir, in start order ({} when none)."""
    try:
        return {k: int(v) for k, v in json.loads(_pids_file(state).read_text()).items()}
    except (OSError, ValueError):
        return {}


def record_pid(state: Path, name: str, pid: int) -> None:
    """Record a component's PID as soon as it starts, so ``down`` can always stop it."""
    pids = read_pids(state)
    pids[name] = pid
    _pids_file(state).write_text(json.dumps(pids))


def forget_pids(state: Path) -> None:
    """Remove the PID record (after everything in it was stopped)."""
    _pids_file(state).unlink(missing_ok=True)


def kill_processes_under(directory: Path) -> list[int]:
    """SIGKILL every process whose command line names a path under ``directory`` and return their PIDs: what a
    runtime that died before it could stop its pods left running (``down``'s last sweep)."""
    marker = str(directory).rstrip("/") + "/"
    killed = []
    for proc in psutil.process_iter(["cmdline"]):
        if proc.pid == os.getpid() or not any(marker in arg for arg in proc.info["cmdline"] or ()):
            continue  # cmdline is None for a process that is not ours to read
        with contextlib.suppress(psutil.Error):
            proc.kill()
            killed.append(proc.pid)
    return killed


def dies_with_parent(argv: list[str], sig: str = "KILL") -> list[str]:
    """argv run through ``setpriv --pdeathsig``: the process gets ``sig`` when the process that started it dies,
    even by SIGKILL or a crash (a kubelet's containers outlive it; the lab's pod processes must not outlive the
    lab's runtime, or they keep the node addresses' ports and answer for the next lab). The setting survives the
    ``ip netns exec``, ``unshare`` and ``sh -c 'exec ...'`` in front of the program, which all exec in place."""
    return ["setpriv", "--pdeathsig", sig, "--", *argv]


def spawn(cmd: list[str], log_path: Path, cwd: Path = REPO_ROOT) -> subprocess.Popen[bytes]:
    """Start a command in its own session with stdout/stderr appended to log_path."""
    with log_path.open("ab") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=child_env(), start_new_session=True, cwd=cwd)


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file ("" if absent)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start_runtime(
    state_dir: Path, api_url: str, users_file: Path, nodes: int, gpu_nodes: int,
    metrics_port: int = 0, timeout: float = 120.0, slot: int = 0, extra: list[str] | None = None,
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start ``python -m lab.runtime`` (``extra``: more of its flags) in its own session; returns (process, ready
    info)."""
    ready = state_dir / "runtime-ready.json"
    ready.unlink(missing_ok=True)
    cmd = [
        sys.executable, "-m", "lab.runtime", "--api", api_url, "--users", str(users_file),
        "--nodes", str(nodes), "--gpu-nodes", str(gpu_nodes), "--metrics-port", str(metrics_port),
        "--ready-file", str(ready), "--slot", str(slot), *(extra or []),
    ]
    proc = spawn(cmd, state_dir / "runtime.log")
    try:
        info = wait_ready_file(ready, proc, timeout, "runtime")
    except BaseException:
        stop_pid(proc.pid)
        raise
    return proc, info
