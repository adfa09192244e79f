"""Benchmark: the real control plane with 1,000 kwok nodes, idle and with 10,000 pods, beside the emulator's figures.

Brings ``lab up`` up with N kwok nodes, then measures over an idle window, a rollout of a
Deployment of P pods (bound by the real scheduler, made Running by kwok), and a window with every pod running:
- lease renewals: the API server's own latency of Lease writes (``apiserver_request_duration_seconds`` for
  ``leases`` PUT, p50/p99 from Prometheus) and the oldest Lease's age sampled every second (max; a renewal is
  due every quarter of the 40 s lease);
- the API server's CPU (cores, from ``process_cpu_seconds_total``) and RSS;
- LIST of every pod (client side, 5 times each): from etcd (``resourceVersion`` unset) and from the watch cache
  (``resourceVersion=0``), as JSON and as protobuf.
The emulator's last recorded figures (lease p99 39.7 ms idle; LIST of 10k pods 143–310 ms) are printed beside
them; they were measured by bench/bench_lab.py and bench/bench_apiserver.py, not in this run. Nothing is
asserted.

    .venv/bin/python bench/bench_control_plane.py [--nodes 1000] [--pods 10000] [--window 60]
        [--max-requests-inflight 400] [--max-mutating-requests-inflight 200]
"""

from __future__ import annotations

import argparse
import datetime
import ssl
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from lab.testing import LabHandle, running_control_plane

EMULATOR = {"lease p99 (idle)": "39.7 ms", "LIST 10k pods": "143-310 ms"}


def query(lab: LabHandle, promql: str) -> float | None:
    """One instant value from the lab's Prometheus (None when the query has no result)."""
    resp = httpx.get(lab.endpoints["prometheus"] + "/api/v1/query", params={"query": promql}, timeout=30)
    resp.raise_for_status()
    result = resp.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def api(lab: LabHandle, path: str, accept: str = "application/json") -> httpx.Response:
    """A GET against the API server as admin."""
    resp = httpx.get(lab.endpoints["apiserver"] + path, timeout=120,
                     verify=ssl.create_default_context(cafile=lab.endpoints["ca_file"]),
                     headers={"Authorization": f"Bearer {lab.admin_token}", "Accept": accept})
    resp.raise_for_status()
    return resp


def oldest_lease_age(lab: LabHandle) -> float:
    """Seconds since the least recently renewed node Lease was renewed."""
    items = api(lab, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases").json()["items"]
    now = datetime.datetime.now(datetime.UTC)
    return max((now - datetime.datetime.fromisoformat(i["spec"]["renewTime"])).total_seconds() for i in items)


def window(lab: LabHandle, seconds: float) -> dict[str, Any]:
    """Lease latency, oldest lease age and API server CPU/RSS over a window of this many seconds."""
    ages: list[float] = []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        ages.append(oldest_lease_age(lab))
        time.sleep(1.0)
    span = f"{int(seconds)}s"
    hist = f'apiserver_request_duration_seconds_bucket{{resource="leases",verb="PUT"}}[{span}]'
    return {
        "lease p50": query(lab, f"histogram_quantile(0.5, sum by (le) (rate({hist})))"),
        "lease p99": query(lab, f"histogram_quantile(0.99, sum by (le) (rate({hist})))"),
        "lease writes/s": query(lab, f'sum(rate(apiserver_request_total{{resource="leases",verb="PUT"}}[{span}]))'),
        "oldest lease age max": max(ages),
        "apiserver CPU cores": query(lab, f'rate(process_cpu_seconds_total{{job="apiserver"}}[{span}])'),
        "apiserver RSS MiB": (query(lab, 'process_resident_memory_bytes{job="apiserver"}') or 0) / 2**20,
        "etcd RSS MiB": (query(lab, 'process_resident_memory_bytes{job="etcd"}') or 0) / 2**20,
        "unhealthy nodes": query(lab, "sum(node_collector_unhealthy_nodes_in_zone)"),
    }


def rollout(lab: LabHandle, pods: int, timeout: float) -> float:
    """Create a Deployment of `pods` pods and wait until all are ready; returns seconds taken."""
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "pause", "namespace": "default"},
                  "spec": {"replicas": pods, "selector": {"matchLabels": {"app": "pause"}},
                           "template": {"metadata": {"labels": {"app": "pause"}},
                                        "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause"}]}}}}
    start = time.monotonic()
    done = lab.kubectl("apply", "-f", "-", context="lab-admin", stdin=yaml.safe_dump(deployment))
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    while time.monotonic() - start < timeout:
        status = api(lab, "/apis/apps/v1/namespaces/default/deployments/pause").json().get("status", {})
        if status.get("readyReplicas", 0) >= pods:
            return time.monotonic() - start
        time.sleep(2)
    raise TimeoutError(f"{pods} pods not ready within {timeout} s")


def list_latency(lab: LabHandle, path: str, accept: str, times: int = 5) -> tuple[float, float, int]:
    """(median, max) seconds of a LIST, and the items' byte size of the last answer."""
    took, size = [], 0
    for _ in range(times):
        start = time.monotonic()
        size = len(api(lab, path, accept).content)
        took.append(time.monotonic() - start)
    return statistics.median(took), max(took), size


def fmt(value: float | None, unit: str = "ms") -> str:
    """A figure for the table."""
    if value is None:
        return "-"
    return f"{value * 1000:.1f} ms" if unit == "ms" else f"{value:.2f}"


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--max-requests-inflight", type=int, default=400,
                        help="Kubernetes' default, not the lab's 40 (sized for storms on a small lab)")
    parser.add_argument("--max-mutating-requests-inflight", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cp-") as tmp:
        t0 = time.monotonic()
        with running_control_plane(Path(tmp), nodes=args.nodes, timeout=900,
                                   max_requests_inflight=args.max_requests_inflight,
                                   max_mutating_requests_inflight=args.max_mutating_requests_inflight) as lab:
            up_s = time.monotonic() - t0
            idle = window(lab, args.window)
            rollout_s = rollout(lab, args.pods, 1800)
            loaded = window(lab, args.window)
            lists = {name: list_latency(lab, path, accept) for name, (path, accept) in {
                "LIST pods, etcd, JSON": ("/api/v1/pods", "application/json"),
                "LIST pods, watch cache, JSON": ("/api/v1/pods?resourceVersion=0", "application/json"),
                "LIST pods, etcd, protobuf": ("/api/v1/pods", "application/vnd.kubernetes.protobuf"),
                "LIST pods, watch cache, protobuf": ("/api/v1/pods?resourceVersion=0",
                                                     "application/vnd.kubernetes.protobuf"),
            }.items()}
    print(f"real control plane, {args.nodes} kwok nodes: up in {up_s:.1f} s; {args.pods} pods ready in {rollout_s:.1f} s")
    print(f"{'':28} {'idle':>12} {f'{args.pods} pods':>12}")
    for key in idle:
        unit = "ms" if key.startswith("lease p") else ""
        ratio = ""
        if idle[key] and loaded[key] is not None:
            ratio = f"  ({loaded[key] / idle[key]:.2f}x)"
        print(f"{key:28} {fmt(idle[key], unit):>12} {fmt(loaded[key], unit):>12}{ratio}")
    for name, (median, worst, size) in lists.items():
        print(f"{name:34} median {median * 1000:7.1f} ms  max {worst * 1000:7.1f} ms  {size / 2**20:6.1f} MiB")
    print("emulator (last recorded, not this run): " + "; ".join(f"{k} {v}" for k, v in EMULATOR.items()))


if __name__ == "__main__":
    main()
