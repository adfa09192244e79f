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
from lab.runtime.errors import LabError
from lab.runtime.lifecycle import UpOptions, down, status, up

app = typer.Typer(add_completion=False, no_args_is_help=True, help="The local emulated Kubernetes lab.")
DEFAULT_STATE = Path(".gameday/lab")


@app.command("up")
def up_cmd(
    nodes: Annotated[int, typer.Option(help="virtual nodes (GPU nodes included)")] = 3,
    gpu_nodes: Annotated[int, typer.Option(help="of which GPU nodes (8 x nvidia.com/gpu each)")] = 1,
    time_scale: Annotated[float, typer.Option(help="lab seconds per real second (intervals are divided by it)")] = 1.0,
    state_dir: Annotated[Path, typer.Option(help="where pids, logs, kubeconfig and endpoints go")] = DEFAULT_STATE,
    seats: Annotated[int, typer.Option(help="API server APF seats")] = 60,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the lab to be ready")] = 180.0,
    eviction_timeout: Annotated[float, typer.Option(help="lab seconds before pods leave an unreachable node")] = 300.0,
    slot: Annotated[int | None, typer.Option(help="address slot 0-7 (default: first free)")] = None,
    training: Annotated[bool, typer.Option(help="also run the CPU training job in network namespaces (root)")] = False,
    apiserver_memory: Annotated[float, typer.Option(
        help="API server memory limit (MiB of the modelled heap); expensive LISTs past it OOM-kill it (0: off)")] = 0.0,
) -> None:
    """Start API server, runtime, the GPU side (with --gpu-nodes) and Prometheus; return when every node
    is Ready and workloads are up."""
    if gpu_nodes > nodes:
        raise typer.BadParameter("--gpu-nodes cannot exceed --nodes")
    try:
        endpoints = up(UpOptions(state_dir.resolve(), nodes, gpu_nodes, time_scale, seats, timeout, eviction_timeout,
                                 slot, training, apiserver_memory))
    except LabError as err:
        typer.echo(f"lab up failed: {err}", err=True)
        raise typer.Exit(1) from err
    typer.echo(json.dumps(endpoints, indent=1))


@app.command("status")
def status_cmd(
    state_dir: Annotated[Path, typer.Option(help="the lab's state dir")] = DEFAULT_STATE,
) -> None:
    """Print components, PIDs alive, node and pod counts (exit 1 when a component is down)."""
    result = status(state_dir.resolve())
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
    stopped = down(state_dir.resolve(), grace)
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
    root = cache_dir or default_cache_dir(os.environ.get("XDG_CACHE_HOME"), Path.home())
    try:
        with RichProgress() as progress:
            binaries = ensure_built(root.resolve(), only, force=force, observer=progress)
    except LabError as err:
        typer.echo(f"lab build failed: {err}", err=True)
        raise typer.Exit(1) from err
    typer.echo(json.dumps({name: str(path) for name, path in binaries.items()}, indent=1))
