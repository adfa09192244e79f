"""Benchmark: node lease renewals of a big lab (default 1,000 nodes, time scale 1) with and without 10k pods.

Brings a lab up, measures lease renewal latency (due → accepted, retries included) p50/p99/max and
missed renewals over a window while idle, while a Deployment of pause pods is rolled out, and over a
window with every pod running; prints the windows side by side with ratios to the idle one. Nothing
is asserted.

    .venv/bin/python bench/bench_lab.py [--nodes 1000] [--pods 10000] [--window 60]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client

from lab.testing import LabHandle, running_lab


def lease_stats(lab: LabHandle, since: float, until: float) -> dict[str, Any]:
    """The runtime's lease statistics between two wall times."""
    url = f"{lab.endpoints['runtime']}/control/leases?since={since}&until={until}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result


def rollout(lab: LabHandle, pods: int, timeout: float) -> float:
    """Create a Deployment of `pods` pause pods and wait until all are ready; returns seconds taken."""
    with lab.client() as api:
        apps = client.AppsV1Api(api)
        dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "pause"},
               "spec": {"replicas": pods, "selector": {"matchLabels": {"app": "pause"}},
                        "template": {"metadata": {"labels": {"app": "pause"}},
                                     "spec": {"containers": [{"name": "pause", "image": "lab/pause"}]}}}}
        start = time.monotonic()
        apps.create_namespaced_deployment("default", dep)
        while time.monotonic() - start < timeout:
            status = apps.read_namespaced_deployment_status("pause", "default").status
            if (status.ready_replicas or 0) >= pods:
                return time.monotonic() - start
            time.sleep(2)
    raise TimeoutError(f"{pods} pods not ready within {timeout} s")


def fmt(value: float | None, base: float | None) -> str:
    """A latency in ms with its ratio to the idle window."""
    if value is None:
        return "-"
    ratio = f" ({value / base:.2f}x)" if base else ""
    return f"{value * 1000:.1f} ms{ratio}"


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--gpu-nodes", type=int, default=100)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp:
        t_up = time.monotonic()
        with running_lab(Path(tmp), nodes=args.nodes, gpu_nodes=args.gpu_nodes, time_scale=1.0,
                         timeout=900) as lab:
            up_s = time.monotonic() - t_up
            t0 = time.time()
            time.sleep(args.window)
            idle = lease_stats(lab, t0, time.time())
            t1 = time.time()
            rollout_s = rollout(lab, args.pods, timeout=1800)
            churn = lease_stats(lab, t1, time.time())
            t2 = time.time()
            time.sleep(args.window)
            loaded = lease_stats(lab, t2, time.time())
    print(f"lab up: {args.nodes} nodes in {up_s:.1f} s; {args.pods} pause pods ready in {rollout_s:.1f} s")
    print(f"{'window':<28}{'renewals':>10}{'missed':>8}{'p50':>22}{'p99':>22}{'max':>22}")
    for name, st in (("idle", idle), (f"rollout of {args.pods} pods", churn), (f"{args.pods} pods running", loaded)):
        print(f"{name:<28}{st['renewals']:>10}{st['missed']:>8}{fmt(st['p50_s'], idle['p50_s']):>22}"
              f"{fmt(st['p99_s'], idle['p99_s']):>22}{fmt(st['max_s'], idle['max_s']):>22}")


if __name__ == "__main__":
    main()
