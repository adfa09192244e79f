"""``python -m lab up|status|down|build``: the lab's lifecycle commands and its component build (typer).

The ``gameday lab`` command forwards here by subprocess (the gameday package never imports lab).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from lab.build import RichProgress, default_cache_dir, ensure_built
from lab.control import plane
from lab.control.components import ControlPlaneOptions
from lab.errors import LabError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="The local Kubernetes lab.")
DEFAULT_STATE = Path(".gameday/lab")


def _cache_root(cache_dir: Path | None) -> Path:
    return (cache_dir or default_cache_dir(os.environ.get("XDG_CACHE_HOME"), Path.home())).resolve()


@app.command("up")
def up_cmd(
    nodes: Annotated[int | None, typer.Option(
        help="kwok's fake nodes (kwok-node-0 ...): Node objects whose leases kwok renews through the API, pods that "
             "never run a process (default 1)")] = None,
    real_nodes: Annotated[int | None, typer.Option(
        help="the lab's own nodes (lab-node-0 ...) whose pods really run (CoreDNS, NodeLocal DNSCache, the "
             "inference workload, the janitor), as local processes on the slot's TEST-NET pod network (root) "
             "(default 2)")] = None,
    gpu_nodes: Annotated[int | None, typer.Option(
        help="GPU nodes besides --real-nodes, run by the lab like its real nodes (8 x nvidia.com/gpu each, a node "
             "agent each with fake NVML, the GPU health monitor and exporter; root) (default 1)")] = None,
    api_only: Annotated[bool, typer.Option(
        help="only etcd and kube-apiserver (no controllers, scheduler, nodes or Prometheus), for API clients' "
             "tests; the node counts default to 0")] = False,
    state_dir: Annotated[Path, typer.Option(help="where pids, logs, kubeconfig and endpoints go")] = DEFAULT_STATE,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the lab to be ready")] = 180.0,
    slot: Annotated[int | None, typer.Option(help="address slot 0-7 (default: first free)")] = None,
    training: Annotated[bool, typer.Option(help="also run the CPU training job in network namespaces (root)")] = False,
    apiserver_memory: Annotated[float, typer.Option(
        help="kube-apiserver's memory cgroup limit in MiB (the kernel OOM-kills it past the limit); 0: off")] = 0.0,
    restart_backoff: Annotated[float, typer.Option(
        help="seconds before the API server is restarted after it exits, doubling up to --restart-backoff-max")
    ] = 10.0,
    restart_backoff_max: Annotated[float, typer.Option(help="the longest restart delay (s)")] = 300.0,
    max_requests_inflight: Annotated[int, typer.Option(
        help="kube-apiserver --max-requests-inflight (Kubernetes: 400; APF's seats are the sum)")] = 40,
    max_mutating_requests_inflight: Annotated[int, typer.Option(
        help="kube-apiserver --max-mutating-requests-inflight (Kubernetes: 200)")] = 20,
    request_timeout: Annotated[int, typer.Option(
        help="kube-apiserver --request-timeout (s); APF waits in a queue a quarter of it before a 429")] = 60,
    node_lease_seconds: Annotated[int, typer.Option(help="the node Lease duration kwok writes")] = 40,
    node_monitor_grace: Annotated[int, typer.Option(
        help="kube-controller-manager --node-monitor-grace-period (s)")] = 40,
    not_ready_toleration: Annotated[int, typer.Option(
        help="seconds pods tolerate a NotReady/unreachable node before eviction")] = 300,
    cache_dir: Annotated[Path | None, typer.Option(help="the component build cache root")] = None,
    gpu_reboot: Annotated[float, typer.Option(
        help="seconds the GPU health monitor's reboot of a node (XID 79) keeps its kubelet down")] = 60.0,
    janitor: Annotated[bool | None, typer.Option(
        "--janitor/--no-janitor", help="run gameday's janitor (the dead-man switch) as a pod on a real node "
        "(default: on with --real-nodes)")] = None,
    control_plane: Annotated[str, typer.Option(hidden=True, help="only 'real' (the emulator is gone)")] = "real",
) -> None:
    """Start the lab on the real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
    kube-scheduler, kwok's nodes, the lab's own real and GPU nodes, Prometheus; built by `lab build` on first use)
    and return when every node is Ready and the workloads are up."""
    if control_plane != "real":
        raise typer.BadParameter(f"{control_plane!r}: the lab runs the real control plane only (the emulated one "
                                 "was retired); leave --control-plane out", param_hint="--control-plane")
    def count(given: int | None, default: int) -> int:
        return given if given is not None else 0 if api_only else default

    real_nodes = count(real_nodes, 2)
    _up_real(ControlPlaneOptions(
        state_dir.resolve(), nodes=count(nodes, 1), timeout=timeout, max_requests_inflight=max_requests_inflight,
        max_mutating_requests_inflight=max_mutating_requests_inflight, request_timeout_seconds=request_timeout,
        node_lease_seconds=node_lease_seconds, node_monitor_grace_seconds=node_monitor_grace,
        not_ready_toleration_seconds=not_ready_toleration, unreachable_toleration_seconds=not_ready_toleration,
        apiserver_memory_mib=apiserver_memory, restart_backoff_seconds=restart_backoff,
        restart_backoff_max_seconds=restart_backoff_max, real_nodes=real_nodes, slot=slot, gpu_nodes=count(gpu_nodes, 1),
        training=training, gpu_reboot_seconds=gpu_reboot, api_only=api_only,
        janitor=real_nodes > 0 and not api_only if janitor is None else janitor),
        _cache_root(cache_dir))


def _up_real(opts: ControlPlaneOptions, cache_root: Path) -> None:
    """lab up on the real control plane (kwok's nodes, the lab's real and GPU nodes); knobs that cannot work exit 2
    before anything is built or started."""
    problems = opts.problems()
    if problems:
        typer.echo("lab up failed: the control plane's knobs cannot work:\n  " + "\n  ".join(problems), err=True)
        raise typer.Exit(2)
    try:
        with RichProgress() as progress:
            binaries = ensure_built(cache_root, plane.BINARIES, observer=progress)
        endpoints = plane.up(opts, binaries)
    except LabError as err:
        typer.echo(f"lab up failed: {err}", err=True)
        raise typer.Exit(1) from err
    typer.echo(json.dumps(endpoints, indent=1))


@app.command("status")
def status_cmd(
    state_dir: Annotated[Path, typer.Option(help="the lab's state dir")] = DEFAULT_STATE,
) -> None:
    """Print components, PIDs alive, node and pod counts (exit 1 when a component is down)."""
    state = state_dir.resolve()
    result = plane.status(state)
    typer.echo(json.dumps(result, indent=1))
    comps = result["components"]
    if not comps or not all(c["alive"] for c in comps.values()):
        raise typer.Exit(1)


@app.command("down")
def down_cmd(
    state_dir: Annotated[Path, typer.Option(help="the lab's state dir")] = DEFAULT_STATE,
    grace: Annotated[float, typer.Option(help="seconds between SIGTERM and SIGKILL")] = 10.0,
) -> None:
    """Stop everything the lab started (idempotent)."""
    state = state_dir.resolve()
    stopped = plane.down(state, grace)
    typer.echo(json.dumps({"stopped": stopped}))


@app.command("build")
def build_cmd(
    cache_dir: Annotated[Path | None, typer.Option(
        help="cache root; binaries go to <root>/<key>/bin (default: ~/.cache/gameday/lab, or $XDG_CACHE_HOME/...)",
    )] = None,
    only: Annotated[list[str] | None, typer.Option(help="build only this component (repeatable)")] = None,
    force: Annotated[bool, typer.Option(help="rebuild even what is cached or on PATH at the pin")] = False,
) -> None:
    """Build the lab's pinned components (kube-apiserver, etcd, CoreDNS, kwok, ...) that are missing; print
    {component: binary} as JSON."""
    try:
        with RichProgress() as progress:
            binaries = ensure_built(_cache_root(cache_dir), only, force=force, observer=progress)
    except LabError as err:
        typer.echo(f"lab build failed: {err}", err=True)
        raise typer.Exit(1) from err
    typer.echo(json.dumps({name: str(path) for name, path in binaries.items()}, indent=1))
