"""Benchmark the node agent: inject request → fault in place, and lease expiry → revert.

Runs the real kube-apiserver alone (``lab.testing.running_api``, for TokenReview) and a real agent process with fake GPUs; with root, also a
partition into a network namespace. Prints distributions (ms) and ratios to a plain authenticated GET,
never asserts. Usage: ``python bench/bench_agent.py [--n 30] [--no-netns]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.testing import AgentProcess, running_agent
from lab.testing import running_api

AGENT_SA = "system:serviceaccount:gameday:gameday-agent"
HTTP = httpx.Client(timeout=10, headers={"Connection": "close"})
"""One client for every call, each on a new connection (as a fresh client per call would, without loading the CAs)."""


def call(url: str, method: str, path: str, token: str, body: Any = None) -> Any:
    """One authenticated JSON call."""
    resp = HTTP.request(method, url + path, content=json.dumps(body).encode() if body is not None else None,
                        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    return json.loads(resp.raise_for_status().content or b"null")


def wait(pred: Callable[[], bool], timeout: float = 10.0) -> float:
    """Spin (1 ms) until ``pred``; returns the wall-clock time it became true."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.001)
    return time.time()


def summary(name: str, xs: list[float], base: float) -> str:
    """p50/p90/max in ms and the median's ratio to the baseline."""
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(0.9 * len(xs)))]
    med = statistics.median(xs)
    return f"{name:<44} n={len(xs):<3} p50={med:7.2f}  p90={p90:7.2f}  max={xs[-1]:7.2f}  x{med / base:6.1f}"


def _gpu0(agent: AgentProcess) -> dict[str, Any]:
    return dict(json.loads(agent.nvml_state.read_text())["devices"][0])


def bench_fake(agent: AgentProcess, token: str, n: int) -> dict[str, list[float]]:
    """Latencies with fake GPUs and the file kernel log."""
    out: dict[str, list[float]] = {"GET /v1/faults (baseline)": [], "inject gpu-xid → line in kmsg": [],
                                   "inject gpu-degrade → clock locked": [], "lease expiry → gpu-degrade reverted": []}
    for i in range(n):
        t0 = time.perf_counter()
        call(agent.url, "GET", "/v1/faults", token)
        out["GET /v1/faults (baseline)"].append((time.perf_counter() - t0) * 1000)
        marker = agent.kmsg_path.read_text().count("\n") if agent.kmsg_path.exists() else 0
        t0 = time.time()
        call(agent.url, "POST", "/v1/faults", token, {"fault_id": f"x{i}", "run_id": "b", "ttl_seconds": 30,
                                                       "params": {"kind": "gpu-xid", "code": 79}})
        t1 = wait(lambda m=marker: agent.kmsg_path.read_text().count("\n") > m)
        out["inject gpu-xid → line in kmsg"].append((t1 - t0) * 1000)
        call(agent.url, "DELETE", f"/v1/faults/x{i}", token)
        t0 = time.time()
        st = call(agent.url, "POST", "/v1/faults", token, {"fault_id": f"d{i}", "run_id": "b", "ttl_seconds": 0.2,
                                                            "params": {"kind": "gpu-degrade", "sm_clock_mhz": 500}})
        t1 = wait(lambda: _gpu0(agent)["sm_clock_locked_mhz"] == 500)
        out["inject gpu-degrade → clock locked"].append((t1 - t0) * 1000)
        expires = time.time() + st["lease_seconds_remaining"]
        t2 = wait(lambda: _gpu0(agent)["sm_clock_locked_mhz"] is None)
        out["lease expiry → gpu-degrade reverted"].append((t2 - expires) * 1000)
    return out


def bench_netns(tmp: Path, api_url: str, api_ca: Path, agent_token: str, token: str, n: int) -> dict[str, list[float]]:
    """Partition latencies inside a throwaway namespace (root only)."""
    ns = f"gdtest-bench-{os.getpid()}"
    out: dict[str, list[float]] = {"inject nccl-partition → chain present": [], "lease expiry → chain gone": []}
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        with running_agent(tmp, "net-1", api_url, agent_token, nvml="none", api_ca_file=api_ca,
                           extra_args=["--netns", ns, "--allow-cidr", "192.0.2.0/24"]) as agent:
            def chain() -> bool:
                res = subprocess.run(["ip", "netns", "exec", ns, "iptables", "-S"], check=False,
                                     capture_output=True, text=True)
                return "-A GD-" in res.stdout
            for i in range(n):
                t0 = time.time()
                st = call(agent.url, "POST", "/v1/faults", token, {
                    "fault_id": f"p{i}", "run_id": "b", "ttl_seconds": 0.3,
                    "params": {"kind": "nccl-partition", "peers": ["192.0.2.2"]}})
                out["inject nccl-partition → chain present"].append((wait(chain) - t0) * 1000)
                expires = time.time() + st["lease_seconds_remaining"]
                out["lease expiry → chain gone"].append((wait(lambda: not chain()) - expires) * 1000)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    return out


def main() -> None:
    """Run and print."""
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=30)
    p.add_argument("--no-netns", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="gameday-bench-agent-") as d:
        tmp = Path(d)
        with running_api(tmp / "api") as api:
            for manifest in ("00-namespace.yaml", "10-agent-rbac.yaml"):  # the agent's own RBAC (TokenReview, SAR)
                api.kubectl("apply", "-f", str(ROOT / "agents" / "manifests" / manifest), context="lab-admin")
            with running_agent(tmp, "gpu-1", api.url, api.token_for(AGENT_SA), nvml="fake", gpu_count=1,
                               api_ca_file=api.ca_file) as agent:
                results = bench_fake(agent, api.runner_token, args.n)
            if os.geteuid() == 0 and not args.no_netns:
                results |= bench_netns(tmp, api.url, api.ca_file, api.token_for(AGENT_SA), api.runner_token, args.n)
    base = statistics.median(results["GET /v1/faults (baseline)"])
    print("latency in ms; 'x' = median / median of an authenticated GET /v1/faults")
    for name, xs in results.items():
        print(summary(name, xs, base))


if __name__ == "__main__":
    main()
