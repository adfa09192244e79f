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
from lab.runtime.errors import LabError
from lab.runtime.lifecycle import UpOptions, down, status, up

app = typer.Typer(add_completion=False, no_args_is_help=True, help="The local Kubernetes lab.")
DEFAULT_STATE = Path(".gameday/lab")


def _cache_root(cache_dir: Path | None) -> Path:
    return (cache_dir or default_cache_dir(os.environ.get("XDG_CACHE_HOME"), Path.home())).resolve()


@app.command("up")
def up_cmd(
    nodes: Annotated[int, typer.Option(help="virtual nodes (GPU nodes included); kwok's nodes with the real plane")] = 3,
    gpu_nodes: Annotated[int | None, typer.Option(
        help="emulated: of which GPU nodes (default 1); real: GPU nodes besides --real-nodes, run by the lab like its "
             "real nodes (default 0, root) (8 x nvidia.com/gpu each, a node agent each)")] = None,
    time_scale: Annotated[float, typer.Option(help="lab seconds per real second (intervals are divided by it)")] = 1.0,
    state_dir: Annotated[Path, typer.Option(help="where pids, logs, kubeconfig and endpoints go")] = DEFAULT_STATE,
    seats: Annotated[int, typer.Option(help="API server APF seats")] = 60,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the lab to be ready")] = 180.0,
    eviction_timeout: Annotated[float, typer.Option(help="lab seconds before pods leave an unreachable node")] = 300.0,
    slot: Annotated[int | None, typer.Option(help="address slot 0-7 (default: first free)")] = None,
    training: Annotated[bool, typer.Option(help="also run the CPU training job in network namespaces (root)")] = False,
    apiserver_memory: Annotated[float, typer.Option(
        help="API server memory limit in MiB (emulated: of the modelled heap; real: its memory cgroup, so the kernel "
             "OOM-kills it past the limit); 0: off")] = 0.0,
    restart_backoff: Annotated[float, typer.Option(
        help="real: seconds before the API server is restarted after it exits, doubling up to --restart-backoff-max")
    ] = 10.0,
    restart_backoff_max: Annotated[float, typer.Option(help="real: the longest restart delay (s)")] = 300.0,
    control_plane: Annotated[str, typer.Option(
        help="emulated (lab/apiserver and lab/runtime) or real (etcd, kube-apiserver, kube-controller-manager, "
             "kube-scheduler and kwok, built by `lab build` on first use)")] = "emulated",
    max_requests_inflight: Annotated[int, typer.Option(
        help="real: kube-apiserver --max-requests-inflight (Kubernetes: 400; APF's seats are the sum)")] = 40,
    max_mutating_requests_inflight: Annotated[int, typer.Option(
        help="real: kube-apiserver --max-mutating-requests-inflight (Kubernetes: 200)")] = 20,
    node_lease_seconds: Annotated[int, typer.Option(help="real: the node Lease duration kwok writes")] = 40,
    node_monitor_grace: Annotated[int, typer.Option(
        help="real: kube-controller-manager --node-monitor-grace-period (s)")] = 40,
    not_ready_toleration: Annotated[int, typer.Option(
        help="real: seconds pods tolerate a NotReady/unreachable node before eviction")] = 300,
    cache_dir: Annotated[Path | None, typer.Option(help="real: the component build cache root")] = None,
    real_nodes: Annotated[int, typer.Option(
        help="real: the lab's own nodes (lab-node-0 ...) whose pods really run, as local processes on the slot's "
             "TEST-NET pod network (root)")] = 0,
    gpu_reboot: Annotated[float, typer.Option(
        help="real: seconds the GPU health monitor's reboot of a node (XID 79) keeps its kubelet down")] = 60.0,
    janitor: Annotated[bool | None, typer.Option(
        "--janitor/--no-janitor", help="real: run gameday's janitor (the dead-man switch) as a pod on a real node "
        "(default: on with --real-nodes)")] = None,
) -> None:
    """Start the lab and return when every node is Ready and workloads are up: emulated (API server, runtime,
    the GPU side with --gpu-nodes, Prometheus) or --control-plane real (the real components, kwok's nodes,
    Prometheus)."""
    if control_plane not in ("emulated", "real"):
        raise typer.BadParameter("--control-plane must be emulated or real")
    if control_plane == "real":
        _up_real(ControlPlaneOptions(
            state_dir.resolve(), nodes=nodes, timeout=timeout, max_requests_inflight=max_requests_inflight,
            max_mutating_requests_inflight=max_mutating_requests_inflight, node_lease_seconds=node_lease_seconds,
            node_monitor_grace_seconds=node_monitor_grace, not_ready_toleration_seconds=not_ready_toleration,
            unreachable_toleration_seconds=not_ready_toleration, apiserver_memory_mib=apiserver_memory,
            restart_backoff_seconds=restart_backoff, restart_backoff_max_seconds=restart_backoff_max,
            real_nodes=real_nodes, slot=slot, gpu_nodes=gpu_nodes or 0, training=training,
            gpu_reboot_seconds=gpu_reboot, janitor=real_nodes > 0 if janitor is None else janitor),
            _cache_root(cache_dir))
        return
    gpu_nodes = 1 if gpu_nodes is None else gpu_nodes
    if gpu_nodes > nodes:
        raise typer.BadParameter("--gpu-nodes cannot exceed --nodes")
    try:
        endpoints = up(UpOptions(state_dir.resolve(), nodes, gpu_nodes, time_scale, seats, timeout, eviction_timeout,
                                 slot, training, apiserver_memory))
    except LabError as err:
        typer.echo(f"lab up failed: {err}", err=True)
        raise typer.Exit(1) from err
    typer.echo(json.dumps(endpoints, indent=1))


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
    result = plane.status(state) if plane.is_real(state) else status(state)
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
    stopped = plane.down(state, grace) if plane.is_real(state) else down(state, grace)
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
