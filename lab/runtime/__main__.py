"""``python -m lab.runtime``: run the lab runtime until SIGTERM/SIGINT (then stop every pod program)."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import signal

from lab.runtime.app import Runtime
from lab.runtime.config import RuntimeConfig
from lab.runtime.loops import KINDS, run


def parse_args(argv: list[str] | None = None) -> tuple[RuntimeConfig, str | None]:
    """The runtime's command line as a RuntimeConfig and an optional ready-file path."""
    p = argparse.ArgumentParser(prog="python -m lab.runtime", description=__doc__)
    p.add_argument("--api", required=True, help="API server URL")
    p.add_argument("--users", required=True, help="users file (token -> identity)")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--gpu-nodes", type=int, default=0)
    p.add_argument("--metrics-host", default="127.0.0.1")
    p.add_argument("--metrics-port", type=int, default=0)
    p.add_argument("--ready-file", default=None)
    p.add_argument("--slot", type=int, default=0, help="address slot: node and pod IPs in the slot's pod network")
    p.add_argument("--no-proxy", action="store_true", help="do not front Services")
    p.add_argument("--ca-file", default="", help="CA of the API server's certificate (an https --api)")
    p.add_argument("--node-prefix", default="node", help="hosted nodes are PREFIX-0, PREFIX-1, ...")
    p.add_argument("--gpu-node-prefix", default="gpu-node", help="hosted GPU nodes are PREFIX-0, PREFIX-1, ...")
    p.add_argument("--pods-dir", default="", help="where each pod's directory (volumes, logs) goes")
    p.add_argument("--binary", action="append", default=[], metavar="NAME=PATH",
                   help="a built component pod programs may run (repeatable)")
    p.add_argument("--node-lease-seconds", type=int, default=40,
                   help="the nodes' Lease duration (s); renewed every quarter of it, as a kubelet does")
    p.add_argument("--event-loop", choices=KINDS, default="asyncio",
                   help="the standard library's event loop (default) or uvloop's (lab/runtime/loops.py)")
    p.add_argument("--log-level", default="INFO")
    a = p.parse_args(argv)
    logging.basicConfig(level=a.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if a.gpu_nodes > a.nodes:
        p.error("--gpu-nodes cannot exceed --nodes")
    cfg = RuntimeConfig(
        api_url=a.api, users_file=a.users, nodes=a.nodes, gpu_nodes=a.gpu_nodes,
        metrics_host=a.metrics_host, metrics_port=a.metrics_port, proxy=not a.no_proxy, slot=a.slot,
        ca_file=a.ca_file, node_prefix=a.node_prefix, gpu_node_prefix=a.gpu_node_prefix, lease_duration_s=a.node_lease_seconds,
        renew_interval_s=a.node_lease_seconds / 4, pods_dir=a.pods_dir,
        binaries=tuple((n, path) for n, _, path in (b.partition("=") for b in a.binary)), event_loop=a.event_loop,
    )
    return cfg, a.ready_file


async def _main(cfg: RuntimeConfig, ready_file: str | None) -> None:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        if task is not None:
            loop.add_signal_handler(sig, task.cancel)
    try:
        await Runtime(cfg).run(ready_file)
    except asyncio.CancelledError:
        logging.getLogger("lab.runtime").info("runtime stopped")


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    # a fatal signal (an abort in a C extension: uvloop, ssl) leaves the Python stacks in the runtime's log, where
    # it used to die silently (once mid-replay, stop 27)
    faulthandler.enable()
    cfg, ready_file = parse_args(argv)
    run(_main(cfg, ready_file), cfg.event_loop)


if __name__ == "__main__":
    main()
