"""Start the agent: build backends from the config, revert leftovers, serve until SIGTERM/SIGINT.

On SIGTERM/SIGINT the agent reverts everything it holds before exiting (reason ``shutdown``);
after SIGKILL the next start reverts it (reason ``restart``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import sys

from aiohttp import web

from agents.auth import Authenticator
from agents.backends.dcgm import Dcgm
from agents.backends.firewall import IptablesFirewall, NftFirewall
from agents.backends.kmsg import KmsgWriter
from agents.backends.nvml import make_nvml
from agents.config import AgentConfig, parse
from agents.errors import AgentFailure
from agents.handlers import Backends, make_handlers
from agents.leases import Leases
from agents.server import build_app
from agents.state import StateFile


def log(msg: str) -> None:
    """One line to stderr."""
    print(f"gameday-agent: {msg}", file=sys.stderr, flush=True)


async def serve(cfg: AgentConfig, stop: asyncio.Event | None = None) -> None:
    """Run the agent until ``stop`` is set (or a signal arrives)."""
    nvml = make_nvml(cfg.nvml, cfg.gpu_count, cfg.nvml_state_file, cfg.node)
    backends = Backends(kmsg=KmsgWriter(cfg.kmsg_path, cfg.kmsg_nsenter), dcgm=Dcgm(cfg.dcgmi), nvml=nvml,
                        iptables=IptablesFirewall(cfg.netns), nft=NftFirewall(cfg.netns))
    leases = Leases(make_handlers(backends), StateFile(cfg.state_file, cfg.node), cfg.limits, log=log)
    for r in await leases.start():
        log(f"restart: {r.fault_id} {'reverted' if r.reverted else 'not reverted: ' + r.message}")
    auth = Authenticator(cfg.api, cfg.allow_users, cfg.allow_groups, cfg.auth_cache_seconds, mode=cfg.authorize,
                         node=cfg.node, audiences=cfg.audiences)
    app = build_app(leases, auth, nvml, cfg.node, str(cfg.kmsg_path))
    sslctx = None
    if cfg.tls_cert and cfg.tls_key:
        sslctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        sslctx.load_cert_chain(str(cfg.tls_cert), str(cfg.tls_key))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, cfg.host, cfg.port, ssl_context=sslctx)
    await site.start()
    port = runner.addresses[0][1]
    host = cfg.host if cfg.host not in ("0.0.0.0", "::") else "127.0.0.1"
    url = f"{'https' if sslctx else 'http'}://{host}:{port}"
    log(f"node {cfg.node} listening on {url} (nvml={nvml.kind}, kmsg={cfg.kmsg_path}, netns={cfg.netns}, "
        f"authorize={cfg.authorize})")
    if cfg.ready_file is not None:
        tmp = cfg.ready_file.with_name(cfg.ready_file.name + ".tmp")
        tmp.write_text(url)
        tmp.replace(cfg.ready_file)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log("stopping: reverting everything held")
        await leases.stop(revert=True)
        await auth.close()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    try:
        cfg = parse(argv)
        asyncio.run(serve(cfg))
    except AgentFailure as exc:
        log(f"error: {exc.message}")
        return 2
    return 0
