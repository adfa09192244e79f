"""Benchmark of the emulated API server (lab/apiserver): lease renewals, big LISTs and a LIST storm.

Plain script, prints numbers and ratios, asserts nothing:

    .venv/bin/python bench/bench_apiserver.py [--nodes 1000] [--pods 10000] [--seconds 20] [--storm-clients 50]

1. Starts the server (subprocess, default 60 seats), creates N nodes, N leases, P pods.
2. Baseline: every node renews its Lease every 10 s (N/10 PUT/s, open loop, node identities -> node-high)
   while the runner polls a namespaced pod LIST; reports p50/p99 lease PUT latency and a full pod LIST time.
3. LIST storm: S clients loop on cluster-wide pod LISTs. Variants: the storm runs as a service account
   (workload-low) or as a plain user (global-default, the runner's level), each without and with a
   break-glass FlowSchema + PriorityLevelConfiguration for gameday-runner; reports lease latency, the
   runner's latency and 429s, and the storm's 429s.
Load generators run in separate processes from each other so their own event loops do not blur the
latencies they measure (the machine has two cores: expect the server and the clients to compete).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.apiserver.testing import RunningApiServer, running_apiserver

STORM_SA = "system:serviceaccount:bench:storm"
STORM_USER = "telemetry"
NAMESPACES = 10


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of values, in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def _load(url: str, token: str, nodes: int, pods: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    conn = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(headers=headers, connector=conn) as session:

        async def post(path: str, body: dict[str, Any]) -> None:
            async with session.post(f"{url}{path}", json=body) as resp:
                if resp.status not in (201, 409):
                    raise RuntimeError(f"{path}: {resp.status} {await resp.text()}")

        await asyncio.gather(
            *(post("/api/v1/namespaces", {"metadata": {"name": f"bench-{n}"}}) for n in range(NAMESPACES)),
            post("/api/v1/namespaces", {"metadata": {"name": "bench"}}),
        )
        await asyncio.gather(
            *(
                post(
                    "/api/v1/nodes",
                    {
                        "metadata": {"name": f"node-{n}", "labels": {"kubernetes.io/hostname": f"node-{n}"}},
                        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
                    },
                )
                for n in range(nodes)
            )
        )
        await asyncio.gather(
            *(
                post(
                    "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                    {
                        "metadata": {"name": f"node-{n}"},
                        "spec": {"holderIdentity": f"node-{n}", "leaseDurationSeconds": 40},
                    },
                )
                for n in range(nodes)
            )
        )
        pod_posts = (
            post(
                f"/api/v1/namespaces/bench-{n % NAMESPACES}/pods",
                {
                    "metadata": {"name": f"pod-{n}", "labels": {"app": f"app-{n % 50}", "tier": "bench"}},
                    "spec": {
                        "nodeName": f"node-{n % nodes}",
                        "containers": [
                            {
                                "name": "main",
                                "image": "lab/pause",
                                "env": [{"name": "N", "value": str(n)}],
                                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                            }
                        ],
                    },
                },
            )
            for n in range(pods)
        )
        await asyncio.gather(*pod_posts)


async def _leases(url: str, tokens: list[str], seconds: float, period: float, out: dict[str, Any]) -> None:
    """Open-loop lease renewals: each node PUTs its lease once per ``period`` seconds."""
    latencies: list[float] = []
    codes: dict[int, int] = {}
    state: dict[int, dict[str, Any]] = {}
    conn = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=conn) as session:
        base = f"{url}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"

        async def renew(n: int) -> None:
            headers = {"Authorization": f"Bearer {tokens[n]}"}
            started = time.perf_counter()
            if n not in state:
                async with session.get(f"{base}/node-{n}", headers=headers) as resp:
                    state[n] = await resp.json()
            lease = state[n]
            lease["spec"]["renewTime"] = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
            async with session.put(f"{base}/node-{n}", json=lease, headers=headers) as resp:
                codes[resp.status] = codes.get(resp.status, 0) + 1
                if resp.status == 200:
                    state[n] = await resp.json()
                else:
                    await resp.read()
                    state.pop(n, None)
            latencies.append(time.perf_counter() - started)

        tasks: set[asyncio.Task[None]] = set()
        interval = period / len(tokens)
        start = time.perf_counter()
        i = 0
        while time.perf_counter() - start < seconds:
            target = start + i * interval
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(renew(i % len(tokens)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        await asyncio.gather(*tasks)
    out.update(latencies=latencies, codes=codes, rate=i / seconds)


async def _runner_probe(url: str, token: str, seconds: float, out: dict[str, Any]) -> None:
    """The game-day runner reads a namespaced pod page every 0.25 s."""
    latencies: list[float] = []
    codes: dict[int, int] = {}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.get(f"{url}/api/v1/namespaces/bench-0/pods?limit=50") as resp:
                await resp.read()
                codes[resp.status] = codes.get(resp.status, 0) + 1
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.25)
    out.update(latencies=latencies, codes=codes)


def _observer(url: str, node_tokens: list[str], runner: str, seconds: float, q: Any) -> None:
    """Process: lease renewals at N/10 per second plus the runner's probe."""
    leases: dict[str, Any] = {}
    probe: dict[str, Any] = {}

    async def main() -> None:
        await asyncio.gather(
            _leases(url, node_tokens, seconds, 10.0, leases), _runner_probe(url, runner, seconds, probe)
        )

    asyncio.run(main())
    q.put({"leases": leases, "probe": probe})


def _storm(url: str, token: str, clients: int, seconds: float, q: Any) -> None:
    """Process: ``clients`` closed loops of cluster-wide pod LISTs (bodies read, not parsed)."""
    codes: dict[int, int] = {}
    times: list[float] = []

    async def one(session: aiohttp.ClientSession, deadline: float) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.get(f"{url}/api/v1/pods") as resp:
                await resp.read()
                codes[resp.status] = codes.get(resp.status, 0) + 1
                if resp.status == 429:
                    await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
                else:
                    times.append(time.perf_counter() - started)

    async def main() -> None:
        conn = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}, connector=conn) as s:
            deadline = time.perf_counter() + seconds
            await asyncio.gather(*(one(s, deadline) for _ in range(clients)))

    asyncio.run(main())
    q.put({"codes": codes, "times": times})


def server_buckets(api: RunningApiServer, verb: str, resource: str) -> dict[float, float]:
    """Cumulative apiserver_request_duration_seconds buckets for one verb/resource, from /metrics."""
    import urllib.request

    req = urllib.request.Request(f"{api.url}/metrics", headers={"Authorization": f"Bearer {api.admin_token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read().decode()
    out: dict[float, float] = {}
    for line in text.splitlines():
        if (
            line.startswith("apiserver_request_duration_seconds_bucket{")
            and f'verb="{verb}"' in line
            and f'resource="{resource}"' in line
        ):
            le = line.split('le="')[1].split('"')[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The upper bound (ms) of the bucket holding the q-quantile of the requests between two scrapes."""
    delta = {le: after.get(le, 0.0) - before.get(le, 0.0) for le in sorted(after)}
    total = delta.get(float("inf"), 0.0)
    for le, count in delta.items():
        if total and count >= q * total:
            return le * 1000
    return float("nan")


def run_phase(
    api: RunningApiServer, node_tokens: list[str], seconds: float, storm_user: str | None, clients: int
) -> dict[str, Any]:
    """Run the observer (and optionally a storm) in child processes; collect their results."""
    ctx = mp.get_context("spawn")
    q: Any = ctx.Queue()
    procs = [ctx.Process(target=_observer, args=(api.url, node_tokens, api.runner_token, seconds, q))]
    if storm_user:
        procs.append(
            ctx.Process(target=_storm, args=(api.url, api.token_for(storm_user), clients, seconds, q))
        )
    before = server_buckets(api, "PUT", "leases")
    for p in procs:
        p.start()
    results = [q.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    merged: dict[str, Any] = {}
    for r in results:
        merged.update(r)
    after = server_buckets(api, "PUT", "leases")
    merged["server_p99"] = bucket_quantile(before, after, 0.99)
    return merged


def list_time(api: RunningApiServer, repeats: int = 3) -> tuple[float, int]:
    """Seconds to LIST all pods cluster-wide (best of ``repeats``) and the body size."""

    async def main() -> tuple[float, int]:
        best, size = float("inf"), 0
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {api.admin_token}"}) as s:
            for _ in range(repeats):
                started = time.perf_counter()
                async with s.get(f"{api.url}/api/v1/pods") as resp:
                    size = len(await resp.read())
                best = min(best, time.perf_counter() - started)
        return best, size

    return asyncio.run(main())


def break_glass(api: RunningApiServer, enable: bool) -> None:
    """Create or delete the runner's break-glass PLC + FlowSchema through the API."""

    async def main() -> None:
        base = f"{api.url}/apis/flowcontrol.apiserver.k8s.io/v1"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {api.admin_token}"}) as s:
            if not enable:
                for kind in ("flowschemas", "prioritylevelconfigurations"):
                    async with s.delete(f"{base}/{kind}/break-glass") as resp:
                        await resp.read()
                return
            plc = {
                "metadata": {"name": "break-glass"},
                "spec": {
                    "type": "Limited",
                    "limited": {
                        "nominalConcurrencyShares": 50,
                        "limitResponse": {
                            "type": "Queue",
                            "queuing": {"queues": 4, "handSize": 2, "queueLengthLimit": 50},
                        },
                    },
                },
            }
            fs = {
                "metadata": {"name": "break-glass"},
                "spec": {
                    "priorityLevelConfiguration": {"name": "break-glass"},
                    "matchingPrecedence": 50,
                    "distinguisherMethod": {"type": "ByUser"},
                    "rules": [
                        {
                            "subjects": [{"kind": "User", "user": {"name": "gameday-runner"}}],
                            "resourceRules": [
                                {
                                    "verbs": ["*"],
                                    "apiGroups": ["*"],
                                    "resources": ["*"],
                                    "namespaces": ["*"],
                                    "clusterScope": True,
                                }
                            ],
                        }
                    ],
                },
            }
            for kind, body in (("prioritylevelconfigurations", plc), ("flowschemas", fs)):
                async with s.post(f"{base}/{kind}", json=body) as resp:
                    await resp.read()

    asyncio.run(main())


def report(name: str, r: dict[str, Any], base_p99: float | None = None) -> float:
    """Print one phase's line; return its lease p99 in ms."""
    lease = r["leases"]["latencies"]
    p50, p99 = pct(lease, 50), pct(lease, 99)
    probe = r["probe"]
    r.get("storm") or {}
    line = (
        f"{name:<34} lease PUT {r['leases']['rate']:6.1f}/s p50 {p50:7.1f} ms p99 {p99:7.1f} ms "
        f"codes {r['leases']['codes']} | runner p50 {pct(probe['latencies'], 50):7.1f} ms "
        f"p99 {pct(probe['latencies'], 99):7.1f} ms 429s {probe['codes'].get(429, 0)}"
    )
    if "codes" in r:
        ok = r["codes"].get(200, 0)
        line += f" | storm 200s {ok} 429s {r['codes'].get(429, 0)} LIST p50 {pct(r['times'], 50):7.1f} ms"
    line += f" | server-side lease PUT p99 <= {r['server_p99']:.0f} ms"
    if base_p99:
        line += f" | lease p99 x{p99 / base_p99:.1f} of baseline"
    print(line, flush=True)
    return p99


def main() -> None:
    """Run every phase and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--storm-seconds", type=float, default=15.0)
    parser.add_argument("--storm-clients", type=int, default=50)
    parser.add_argument("--seats", type=int, default=60)
    args = parser.parse_args()
    nodes = [f"node-{n}" for n in range(args.nodes)]
    with (
        tempfile.TemporaryDirectory(prefix="bench-apiserver-") as tmp,
        running_apiserver(
            Path(tmp),
            nodes=nodes,
            seats=args.seats,
            service_accounts=[("bench", "storm")],
            extra_users={STORM_USER: []},
        ) as api,
    ):
        started = time.perf_counter()
        asyncio.run(_load(api.url, api.admin_token, args.nodes, args.pods))
        print(
            f"loaded {args.nodes} nodes + leases, {args.pods} pods in {time.perf_counter() - started:.1f} s"
        )
        seconds, size = list_time(api)
        print(
            f"cluster-wide LIST of {args.pods} pods: {seconds * 1000:.0f} ms, {size / 1e6:.1f} MB "
            f"({size / 1e6 / seconds:.0f} MB/s)"
        )
        tokens = [api.token_for(f"system:node:{n}") for n in nodes]
        base = report("baseline (no storm)", run_phase(api, tokens, args.seconds, None, 0))
        for user, label in (
            (STORM_SA, "storm as SA (workload-low)"),
            (STORM_USER, "storm as user (global-default)"),
        ):
            for glass in (False, True):
                break_glass(api, glass)
                result = run_phase(api, tokens, args.storm_seconds, user, args.storm_clients)
                report(f"{label}{' +break-glass' if glass else ''}", result, base)
            break_glass(api, False)


if __name__ == "__main__":
    main()
