"""Benchmark: queries/s served by one lab CoreDNS replica, with and without the cache plugin.

The replica runs in its own process (as a kubelet would run it), fed by the real emulated API
server with ``--services`` services; the client runs here. Two clients, both built on dnspython:
``dnspython``: ``dns.asyncquery.udp`` from ``--concurrency`` tasks (what pods' resolvers cost), and
``window``: pre-encoded dnspython queries over one UDP socket with ``--concurrency`` outstanding
(closer to the server's own capacity). Configurations alternate (ABAB) and the ratio is printed.

    .venv/bin/python bench/bench_dns.py --seconds 3 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing as mp
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.message

from lab.apiserver.testing import running_apiserver
from lab.dns.program import CoreDnsProgram
from lab.dns.testing import coredns_context

IP = "127.0.53.9"
CACHED = ".:53 {\n kubernetes cluster.local {\n ttl 30\n }\n cache 30\n}\n"
UNCACHED = ".:53 {\n kubernetes cluster.local {\n ttl 30\n }\n}\n"


def _serve(url: str, token: str, corefile: str, port_q: Any, stop_ev: Any) -> None:
    """Child process: run one replica with ``corefile`` until told to stop."""

    async def main() -> None:
        program = CoreDnsProgram()
        ctx = coredns_context(url, token, {"COREFILE_CONFIGMAP": "bench/none", "COREFILE": corefile}, IP)
        await program.start(ctx)
        port_q.put(program.port)
        while not stop_ev.is_set():
            await asyncio.sleep(0.1)
        await program.stop()

    asyncio.run(main())


def _post(url: str, token: str, path: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    urllib.request.urlopen(req).close()


async def dnspython_client(port: int, names: list[str], seconds: float, concurrency: int) -> int:
    """Count answers from ``concurrency`` tasks looping on dns.asyncquery.udp."""
    done = 0
    deadline = time.monotonic() + seconds
    cycle = itertools.cycle(names)

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await dns.asyncquery.udp(dns.message.make_query(next(cycle), "A"), IP, port=port, timeout=2)
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


class _Window(asyncio.DatagramProtocol):
    def __init__(self, wires: list[bytes], window: int) -> None:
        self.wires, self.window, self.done = itertools.cycle(wires), window, 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        for _ in range(self.window):
            transport.sendto(next(self.wires))

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.done += 1
        if self.transport is not None:
            self.transport.sendto(next(self.wires))


async def window_client(port: int, names: list[str], seconds: float, concurrency: int) -> int:
    """Count answers with ``concurrency`` pre-encoded queries outstanding on one socket."""
    wires = [dns.message.make_query(n, "A").to_wire() for n in names]
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _Window(wires, concurrency), remote_addr=(IP, port)
    )
    await asyncio.sleep(seconds)
    transport.close()
    return proto.done


def measure(
    url: str, token: str, corefile: str, names: list[str], args: argparse.Namespace
) -> dict[str, float]:
    """Start a replica with ``corefile`` in a child process and measure both clients against it."""
    ctx = mp.get_context("spawn")
    port_q, stop_ev = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve, args=(url, token, corefile, port_q, stop_ev))
    proc.start()
    try:
        port = int(port_q.get(timeout=30))
        asyncio.run(window_client(port, names, 0.3, args.concurrency))  # warm-up
        out = {
            "dnspython": asyncio.run(dnspython_client(port, names, args.seconds, args.concurrency))
            / args.seconds,
            "window": asyncio.run(window_client(port, names, args.seconds, args.concurrency)) / args.seconds,
        }
    finally:
        stop_ev.set()
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
            proc.join()
    return out


def main() -> None:
    """Run the side-by-side benchmark and print queries/s and ratios."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--services", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_apiserver(Path(tmp)) as api:
        _post(api.url, api.admin_token, "/api/v1/namespaces", {"metadata": {"name": "bench"}})
        names = []
        for i in range(args.services):
            svc = {"metadata": {"name": f"svc{i}"}, "spec": {"clusterIP": f"10.96.1.{i + 1}"}}
            _post(api.url, api.admin_token, "/api/v1/namespaces/bench/services", svc)
            names.append(f"svc{i}.bench.svc.cluster.local")
        results: dict[str, list[dict[str, float]]] = {"cache": [], "no cache": []}
        for _ in range(args.rounds):
            results["no cache"].append(measure(api.url, api.admin_token, UNCACHED, names, args))
            results["cache"].append(measure(api.url, api.admin_token, CACHED, names, args))
    print(
        f"one replica, {args.services} names, concurrency {args.concurrency}, {args.rounds}x{args.seconds}s each"
    )
    print(f"{'client':<10} {'no cache q/s':>14} {'cache q/s':>12} {'cache/no cache':>15}")
    for client in ("dnspython", "window"):
        plain = statistics.median(r[client] for r in results["no cache"])
        cached = statistics.median(r[client] for r in results["cache"])
        print(f"{client:<10} {plain:>14.0f} {cached:>12.0f} {cached / plain:>15.2f}")


if __name__ == "__main__":
    main()
