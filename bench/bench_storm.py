"""Benchmark: achieved LIST rate of the storm client vs. its target, aiohttp vs. the bare asyncio.Protocol client.

Runs against the real kube-apiserver alone (``lab.testing.running_api``: etcd + kube-apiserver v1.37.2, HTTPS),
with 2,000 seats so the server's APF does not throttle and the client's own ceiling shows. Prints a side-by-side table; asserts
nothing. Usage: ``.venv/bin/python bench/bench_storm.py [--seconds 4] [--objects 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from lab.testing import running_api
from tasks.cluster import Cluster
from tasks.faults.storm import StormConfig, run_storm

RATES = (100.0, 300.0, 1000.0, 3000.0)


async def _measure(cfg: StormConfig, seconds: float) -> dict[str, float]:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    snap = (await run_storm(cfg, stop)).snapshot()
    return {"achieved": snap["achieved_rate"], "p50": snap["p50_ms"], "p99": snap["p99_ms"],
            "errors": snap["errors"] + sum(v for k, v in snap["codes"].items() if k != "200")}


def main() -> None:
    """Run every (rate, client) pair and print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--objects", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_api(Path(tmp), nodes=["n0"], max_requests_inflight=1000,
                                                             max_mutating_requests_inflight=1000) as api:
        admin = Cluster.from_kubeconfig(api.kubeconfig, "lab-admin")
        admin.ensure_namespace("bench")
        for i in range(args.objects):
            admin.create_configmap("bench", {"metadata": {"name": f"cm-{i}"}, "data": {"x": "y" * 100}})
        admin.close()
        print(f"LIST configmaps ({args.objects} objects), {args.seconds:g}s per cell, "
              f"concurrency {args.concurrency}, HTTPS on loopback, kube-apiserver v1.37.2")
        print(f"{'target/s':>9} | {'aiohttp/s':>9} {'p50 ms':>7} {'p99 ms':>7} | "
              f"{'protocol/s':>10} {'p50 ms':>7} {'p99 ms':>7} | {'protocol÷aiohttp':>16}")
        for rate in RATES:
            row = {}
            for client in ("aiohttp", "protocol"):
                cfg = StormConfig(url=api.url, token=api.admin_token, ca_cert=str(api.ca_file), resource="configmaps", rate=rate,
                                  concurrency=args.concurrency, ramp_up_s=0.0, stats_path=f"{tmp}/{client}.json",
                                  client=client)  # type: ignore[arg-type]
                row[client] = asyncio.run(_measure(cfg, args.seconds))
            a, p = row["aiohttp"], row["protocol"]
            ratio = p["achieved"] / a["achieved"] if a["achieved"] else float("nan")
            print(f"{rate:9.0f} | {a['achieved']:9.1f} {a['p50']:7.2f} {a['p99']:7.2f} | "
                  f"{p['achieved']:10.1f} {p['p50']:7.2f} {p['p99']:7.2f} | {ratio:16.2f}"
                  + (f"  (errors: aiohttp {a['errors']:.0f}, protocol {p['errors']:.0f})"
                     if a["errors"] or p["errors"] else ""))


if __name__ == "__main__":
    main()
