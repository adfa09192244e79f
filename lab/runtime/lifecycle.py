"""``lab up`` / ``lab status`` / ``lab down``: start, inspect and stop a whole lab by its state dir.

The state dir holds ``users.json``, ``sa-secret`` (signs pods' service-account tokens), ``kubeconfig``
(contexts ``lab`` = gameday-runner, current, and ``lab-admin``), ``endpoints.json``, ``pids.json`` and
one log per component. ``up`` records every PID as soon as it starts a process, so ``down`` (SIGTERM,
then SIGKILL) can always clean up, and a failed ``up`` stops everything it started before it raises.
With GPU nodes, ``up`` also runs the GPU side (``python -m lab.gpu``: node agents, DCGM-style exporter,
health monitor, optionally the training job) and records its PID and every agent's.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab import prometheus
from lab.apiserver.users import ADMIN, RUNNER, new_sa_secret, token_for, write_users
from lab.gpu import launch
from lab.runtime import slots
from lab.runtime.apply import (
    Rest,
    apply,
    deployments_available,
    load_documents,
    manifest_files,
    node_counts,
    pod_phases,
)
from lab.runtime.config import RuntimeConfig
from lab.runtime.errors import LabError, LabStartError
from lab.runtime.identities import lab_users
from lab.runtime.procs import (
    forget_pids,
    log_tail,
    pid_alive,
    read_pids,
    record_pid,
    spawn,
    start_runtime,
    stop_pid,
    wait_ready_file,
)

COMPONENTS = ("gpu", "prometheus", "runtime", "apiserver")  # stop order: the GPU side needs the API server


@dataclass(frozen=True)
class UpOptions:
    """What ``lab up`` builds."""

    state_dir: Path
    nodes: int = 3
    gpu_nodes: int = 1
    time_scale: float = 1.0
    seats: int = 60
    timeout: float = 180.0
    eviction_timeout: float = 300.0
    slot: int | None = None
    training: bool = False
    apiserver_memory_mb: float = 0.0


def write_kubeconfig(path: Path, url: str, runner_token: str, admin_token: str, ca_file: str | None = None) -> Path:
    """A kubeconfig with contexts ``lab`` (gameday-runner, current) and ``lab-admin``."""
    cluster: dict[str, Any] = {"server": url}
    if ca_file:
        cluster["certificate-authority"] = ca_file
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "lab", "cluster": cluster}],
        "users": [
            {"name": RUNNER, "user": {"token": runner_token}},
            {"name": ADMIN, "user": {"token": admin_token}},
        ],
        "contexts": [
            {"name": "lab", "context": {"cluster": "lab", "user": RUNNER, "namespace": "default"}},
            {"name": "lab-admin", "context": {"cluster": "lab", "user": ADMIN, "namespace": "default"}},
        ],
        "current-context": "lab",
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def _memory_args(opts: UpOptions) -> list[str]:
    """The API server's memory model: off unless a limit is given; restart delays follow the time scale
    (kubelet's CrashLoopBackOff of 10 s doubling, capped at 20 lab-s so replays end); the watch cache takes
    10 real seconds to re-initialise after each restart."""
    if not opts.apiserver_memory_mb:
        return []
    scale = opts.time_scale
    return ["--memory-limit-mb", str(opts.apiserver_memory_mb), "--restart-delay", f"{10 / scale:.3f}",
            "--restart-delay-max", f"{20 / scale:.3f}", "--cache-init-seconds", "10"]


def _start_apiserver(opts: UpOptions, users_file: Path, sa_secret: Path) -> dict[str, Any]:
    state = opts.state_dir
    ready = state / "apiserver-ready.json"
    ready.unlink(missing_ok=True)
    proc = spawn([
        sys.executable, "-m", "lab.apiserver", "--host", "127.0.0.1", "--port", "0",
        "--users", str(users_file), "--seats", str(opts.seats), "--ready-file", str(ready),
        "--tls-dir", str(state / "tls"), "--sa-secret-file", str(sa_secret),
        *_memory_args(opts),
    ], state / "apiserver.log")
    record_pid(state, "apiserver", proc.pid)
    try:
        info = wait_ready_file(ready, proc, 60, "apiserver")
    except LabStartError as err:
        raise LabStartError(f"{err}\n{log_tail(state / 'apiserver.log')}") from err
    return info


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if not last:
            return
        time.sleep(0.2)
    raise LabStartError(f"timed out waiting for {what}: still waiting on {last}")


def _nodes_waiting(rest: Rest, want: int) -> list[str]:
    total, ready = node_counts(rest)
    return [] if total == ready == want else [f"{ready}/{total} of {want} nodes Ready"]


def _start_gpu(opts: UpOptions, cfg: RuntimeConfig, rest: Rest, api_url: str, runtime_url: str,
               users: dict[str, dict[str, Any]], timeout: float) -> dict[str, Any]:
    """Run the GPU side for the GPU nodes, record its PIDs and apply the GPU workload."""
    nodes = [n for n in cfg.node_names() if cfg.is_gpu(n)]
    proc = launch.spawn_stack(opts.state_dir, api_url, runtime_url, nodes, opts.time_scale, opts.training,
                              token_for(users, launch.AGENT_USER), token_for(users, launch.MONITOR_USER))
    record_pid(opts.state_dir, "gpu", proc.pid)
    info = launch.wait_stack(opts.state_dir, proc, timeout)
    for node, pid in (info.get("agent_pids") or {}).items():
        record_pid(opts.state_dir, f"gpu-agent-{node}", int(pid))
    for doc in load_documents([launch.MANIFEST]):
        apply(rest, doc)
    return info


def up(opts: UpOptions) -> dict[str, Any]:
    """Start a lab; returns the endpoints dict once nodes are Ready, Deployments available and
    Prometheus has data. On failure everything started is stopped and LabStartError raised."""
    launch.check_training_allowed(opts.training)
    if opts.training and opts.gpu_nodes < 1:
        raise LabError("--training needs at least one GPU node (--gpu-nodes)")
    state = opts.state_dir
    state.mkdir(parents=True, exist_ok=True)
    alive = {k: p for k, p in read_pids(state).items() if pid_alive(p)}
    if alive:
        raise LabError(f"a lab is already running from {state} ({alive}); run `python -m lab down` first")
    forget_pids(state)
    slot = slots.claim(state, opts.slot)
    deadline = time.monotonic() + opts.timeout
    cfg = RuntimeConfig(api_url="", users_file="", nodes=opts.nodes, gpu_nodes=opts.gpu_nodes)
    users = lab_users(cfg.node_names())
    users_file = state / "users.json"
    write_users(users_file, users)
    admin, runner = token_for(users, ADMIN), token_for(users, RUNNER)
    sa_secret = state / "sa-secret"
    new_sa_secret(sa_secret)
    gpu: dict[str, Any] = {}
    try:
        api = _start_apiserver(opts, users_file, sa_secret)
        url = str(api["url"])
        kubeconfig = write_kubeconfig(state / "kubeconfig", str(api.get("https_url") or url), runner, admin,
                                      api.get("ca_file"))
        rest = Rest(url, admin)
        docs = load_documents(manifest_files(), {slots.MANIFEST_PREFIX: slots.service_prefix(slot)})
        for doc in [d for d in docs if d.get("kind") == "Namespace"]:
            apply(rest, doc)
        proc, info = start_runtime(state, url, users_file, opts.nodes, opts.gpu_nodes, opts.time_scale,
                                   eviction_timeout=opts.eviction_timeout, timeout=max(deadline - time.monotonic(), 10),
                                   slot=slot, sa_secret_file=sa_secret)
        record_pid(state, "runtime", proc.pid)
        for doc in [d for d in docs if d.get("kind") != "Namespace"]:
            apply(rest, doc)
        if opts.gpu_nodes > 0:
            gpu = _start_gpu(opts, cfg, rest, url, info["url"], users, max(deadline - time.monotonic(), 10))
        prom, prom_url = prometheus.start(state, url, info["url"], admin,
                                          timeout=max(deadline - time.monotonic(), 10),
                                          extra_jobs=launch.scrape_jobs(gpu) if gpu else None)
        record_pid(state, "prometheus", prom.pid)
        _wait(lambda: _nodes_waiting(rest, opts.nodes), max(deadline - time.monotonic(), 1), "nodes Ready")
        _wait(lambda: deployments_available(rest), max(deadline - time.monotonic(), 1), "Deployments available")
        rest.close()
    except BaseException as err:
        down(state)
        if isinstance(err, LabStartError):
            raise LabStartError(f"{err}\nruntime log:\n{log_tail(state / 'runtime.log')}") from err
        raise
    endpoints = {
        "apiserver": url, "apiserver_https": api.get("https_url"), "ca_file": api.get("ca_file"),
        "prometheus": prom_url, "dns": slots.dns_address(slot), "gateway": slots.gateway_url(slot),
        "slot": slot,
        "runtime_metrics": info["url"] + "/metrics", "runtime": info["url"],
        "kubeconfig": str(kubeconfig), "users": str(users_file), "time_scale": opts.time_scale,
        "nodes": opts.nodes, "gpu_nodes": opts.gpu_nodes, "pids": read_pids(state),
        "gpu_exporter": gpu.get("exporter"), "gpu_monitor": gpu.get("monitor"),
        "gpu_agents": gpu.get("agents") or {}, "training": gpu.get("training") or {},
        "training_metrics": (gpu.get("training") or {}).get("metrics"),
    }
    (state / "endpoints.json").write_text(json.dumps(endpoints, indent=1))
    return endpoints


def down(state: Path, grace: float = 10.0) -> dict[str, int]:
    """Stop every recorded component by PID (SIGTERM, SIGKILL after grace), known ones in dependency order and
    the rest in reverse start order; idempotent."""
    pids = read_pids(state)
    order = ["gpu", *sorted(n for n in pids if n.startswith("gpu-agent-")), *COMPONENTS[1:]]
    for name in order:
        if name in pids:
            stop_pid(pids[name], grace)
    for name, pid in reversed(pids.items()):  # the rest (the real control plane's) in reverse start order
        if name not in order:
            stop_pid(pid, grace)
    forget_pids(state)
    slots.release(state)
    for extra in ("endpoints.json", "apiserver-ready.json", "runtime-ready.json", "gpu-ready.json"):
        (state / extra).unlink(missing_ok=True)
    return pids


def status(state: Path) -> dict[str, Any]:
    """Components with PIDs and liveness, plus node and pod counts when the API answers."""
    pids = read_pids(state)
    result: dict[str, Any] = {
        "state_dir": str(state),
        "components": {name: {"pid": pid, "alive": pid_alive(pid)} for name, pid in pids.items()},
    }
    try:
        endpoints = json.loads((state / "endpoints.json").read_text())
        users = json.loads((state / "users.json").read_text())
    except (OSError, ValueError):
        return result
    result["endpoints"] = endpoints
    try:
        rest = Rest(endpoints["apiserver"], token_for(users, ADMIN), timeout=5)
        total, ready = node_counts(rest)
        result["nodes"] = {"total": total, "ready": ready}
        result["pods"] = pod_phases(rest)
        rest.close()
    except Exception as err:  # noqa: BLE001  # status must report, not fail, when the API is down
        result["api_error"] = repr(err)
    return result
