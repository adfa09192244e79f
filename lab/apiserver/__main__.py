"""Command line: ``python -m lab.apiserver --host 127.0.0.1 --port 0 --users FILE [--seats N]
[--sa-secret-file F] [--queue-timeout S] [--ready-file PATH] [--anonymous-metrics] [--history N]``.

Port 0 picks a free port; once listening, the URL and PID are written to ``--ready-file`` as JSON
``{"url": ..., "pid": ..., "https_url": ..., "ca_file": ...}`` (written atomically). The HTTPS
listener (``--https-port``, self-signed certificate) is there for kubectl, which sends bearer tokens
only over TLS; ``--no-https`` turns it off. SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

import uvloop
from aiohttp import web

from lab.apiserver import tls
from lab.apiserver.app import SERVER_KEY, build_app
from lab.apiserver.config import ApiServerConfig
from lab.apiserver.server import Server
from lab.apiserver.users import load_users

FREEZE_INTERVAL = 30.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m lab.apiserver", description="Emulated Kubernetes API server"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--users", type=Path, required=True, help="JSON users file: token -> identity")
    parser.add_argument(
        "--sa-secret-file", type=Path, default=None, help="secret that signs lab-sa.* service-account tokens"
    )
    parser.add_argument("--seats", type=int, default=60, help="total APF seats")
    parser.add_argument("--queue-timeout", type=float, default=15.0, help="APF queue wait limit, seconds")
    parser.add_argument("--history", type=int, default=10_000, help="watch history ring size")
    parser.add_argument("--bookmark-interval", type=float, default=5.0)
    parser.add_argument("--https-port", type=int, default=0, help="HTTPS listener port (0: pick one)")
    parser.add_argument("--no-https", action="store_true", help="serve plain HTTP only")
    parser.add_argument(
        "--tls-dir", type=Path, default=None, help="where ca.crt/server.key live (default: temp)"
    )
    parser.add_argument("--ready-file", type=Path, default=None)
    parser.add_argument("--anonymous-metrics", action="store_true", help="serve /metrics without a token")
    parser.add_argument("--memory-limit-mb", type=float, default=0.0,
                        help="modelled heap limit (MiB); past it the server is OOM-killed and restarts (0: off)")
    parser.add_argument("--heap-amplification", type=float, default=8.0, help="heap bytes per listed JSON byte")
    parser.add_argument("--gc-seconds", type=float, default=1.0, help="time constant of the modelled GC")
    parser.add_argument("--restart-delay", type=float, default=10.0, help="first restart delay after an OOM kill")
    parser.add_argument("--restart-delay-max", type=float, default=300.0, help="cap of the doubling restart delay")
    parser.add_argument("--cache-init-seconds", type=float, default=10.0,
                        help="watch cache re-initialisation after a restart (reflectors get 429)")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument(
        "--parent-pid", type=int, default=0, help="exit when this process is no longer the parent"
    )
    return parser.parse_args(argv)


def _port(site: web.TCPSite) -> int:
    """The port a site is bound to (aiohttp has no public getter for it)."""
    sockets = getattr(site._server, "sockets", None)
    if not sockets:
        raise OSError("the listener has no socket")
    port: int = sockets[0].getsockname()[1]
    return port


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    """Stop when the launching process dies (tests killed hard leave no orphaned servers)."""
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    stop.set()


async def _freeze_periodically() -> None:
    """Move resident objects out of the GC's view so full collections never stall the loop."""
    while True:
        await asyncio.sleep(FREEZE_INTERVAL)
        gc.freeze()


def _install_oom_kill(
    server: Server, runner: web.AppRunner, live: list[web.TCPSite], addresses: list[tuple[str, int, Any]]
) -> None:
    """On an OOM kill: stop listening, cut every connection, listen again on the same ports after the delay."""

    async def die_and_restart(delay: float) -> None:
        for site in live:
            await site.stop()
        live.clear()
        handler = runner.server
        for conn in handler.connections if handler is not None else []:
            if conn.transport is not None:
                conn.transport.abort()
        await asyncio.sleep(delay)
        for host, port, ssl_context in addresses:
            site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True, ssl_context=ssl_context)
            await site.start()
            live.append(site)
        server.restarted()

    tasks: set[asyncio.Task[None]] = set()

    def on_kill(delay: float) -> None:
        task = asyncio.get_running_loop().create_task(die_and_restart(delay))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server.on_kill = on_kill


async def serve(args: argparse.Namespace) -> None:
    """Run the server until SIGTERM/SIGINT."""
    config = ApiServerConfig(
        users=load_users(args.users),
        seats=args.seats,
        queue_timeout=args.queue_timeout,
        history=args.history,
        anonymous_metrics=args.anonymous_metrics,
        bookmark_interval=args.bookmark_interval,
        users_file=args.users,
        sa_secret_file=args.sa_secret_file,
        memory_limit=int(args.memory_limit_mb * 2**20),
        heap_amplification=args.heap_amplification,
        gc_seconds=args.gc_seconds,
        restart_delay=args.restart_delay,
        restart_delay_max=args.restart_delay_max,
        cache_init_seconds=args.cache_init_seconds,
    )
    app = build_app(config)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=1024, reuse_address=True)
    await site.start()
    ready: dict[str, object] = {"url": f"http://{args.host}:{_port(site)}", "pid": os.getpid()}
    temp_tls: Path | None = None
    live = [site]
    addresses: list[tuple[str, int, Any]] = [(str(args.host), _port(site), None)]
    if not args.no_https:
        tls_dir = Path(args.tls_dir) if args.tls_dir else None
        if tls_dir is None:
            tls_dir = temp_tls = Path(tempfile.mkdtemp(prefix="lab-apiserver-tls-"))
        cert, key = tls.ensure_cert(tls_dir)
        ssl_context = tls.server_context(cert, key)
        secure = web.TCPSite(
            runner,
            args.host,
            args.https_port,
            backlog=1024,
            reuse_address=True,
            ssl_context=ssl_context,
        )
        await secure.start()
        ready.update(https_url=f"https://{args.host}:{_port(secure)}", ca_file=str(cert))
        live.append(secure)
        addresses.append((str(args.host), _port(secure), ssl_context))
    _install_oom_kill(app[SERVER_KEY], runner, live, addresses)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    if args.ready_file:
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(ready))
        tmp.replace(args.ready_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(_freeze_periodically())]
    if args.parent_pid:
        tasks.append(asyncio.create_task(_watch_parent(args.parent_pid, stop)))
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await runner.cleanup()
        if temp_tls is not None:
            shutil.rmtree(temp_tls, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvloop.run(serve(args))


if __name__ == "__main__":
    main()
