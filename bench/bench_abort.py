"""Abort latency: from a guardrail condition becoming true in Prometheus's target to every fault rolled back.

    .venv/bin/python bench/bench_abort.py [--trials 5] [--scrape 1] [--every 0.5]

A real Prometheus (Debian's ``prometheus``) scrapes a tiny HTTP exporter every ``--scrape`` seconds; the
runner (tasks/run/runner.py, real probes, real local ledger) observes a stage of 3 noop faults under a
prometheus guardrail ``max(bench_bad) == 0`` evaluated every ``--every`` seconds. At a random moment
the exporter flips ``bench_bad`` to 1; we time until the last fault's rollback. Goal: at most one scrape
interval + 2 s. Prints min / median / max against the goal; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class Exporter:
    """An HTTP /metrics endpoint exposing ``bench_bad`` (0 or 1)."""

    def __init__(self) -> None:
        self.bad = 0
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = f"# TYPE bench_bad gauge\nbench_bad {me.bad}\n".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_prometheus(work: Path, target_port: int, scrape: float) -> tuple[subprocess.Popen[bytes], str]:
    """Start Prometheus scraping the exporter; wait until it has a sample."""
    binary = shutil.which("prometheus")
    if binary is None:
        sys.exit("needs Prometheus: apt-get install -y prometheus")
    port = free_port()
    (work / "prometheus.yml").write_text(
        f"global: {{scrape_interval: {int(scrape * 1000)}ms, evaluation_interval: {int(scrape * 1000)}ms}}\n"
        f"scrape_configs:\n  - job_name: bench\n    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n"
    )
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{url}/api/v1/query", params={"query": "bench_bad"}, timeout=2)
            if r.is_success and b'"value"' in r.content:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit("Prometheus did not scrape the exporter within 60 s")


def trial(url: str, exporter: Exporter, every: float, state: Path) -> float:
    """Seconds from the flip to the last rollback, for one stage of 3 noop faults."""
    from blueprints import parse
    from tasks.faults import REGISTRY
    from tasks.faults.base import FaultContext
    from tasks.ledger import Ledger
    from tasks.probes import ProbeContext
    from tasks.run.connect import plain_ops, probe_evaluator
    from tasks.run.recorder import Recorder
    from tasks.run.runner import CampaignRunner

    campaign = parse(f"""
name: abort-bench
owner: bench
hypothesis: {{belief: none, expectations: ["bad <= 0 during fault"]}}
target: {{cluster: lab, namespaces: [default], blast_radius: {{max_pods: 0}}}}
observables: [{{name: bad, query: max(bench_bad)}}]
guardrails:
  - name: bench-bad
    every: {every}s
    probe: {{name: bad, type: prometheus, query: max(bench_bad), tolerance: {{value: 0}}}}
baseline: 0s
stages:
  - {{name: s, faults: [{{kind: noop, name: a}}, {{kind: noop, name: b}}, {{kind: noop, name: c}}], observe: 60s,
     recovery: 0s}}
""")
    run_id = f"abort-{time.monotonic_ns()}"
    ops = plain_ops(REGISTRY, Ledger(state, run_id), probe_evaluator(ProbeContext(prometheus_url=url)))
    runner = CampaignRunner(campaign, FaultContext(cluster=None, run_id=run_id), ops, Recorder(run_id))
    flipped: dict[str, float] = {}

    def flip() -> None:
        flipped["at"] = time.time()
        exporter.bad = 1

    timer = threading.Timer(random.uniform(2.0, 4.0), flip)
    timer.start()
    try:
        status = runner.run()
    finally:
        timer.cancel()
        exporter.bad = 0
    assert status == "aborted", status
    last = max(e.at.timestamp() for e in runner.recorder.events if e.kind == "rollback")
    return last - flipped["at"]


def wait_clear(url: str) -> None:
    """Wait until Prometheus sees bench_bad back at 0 (between trials)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if b'"0"]' in httpx.get(f"{url}/api/v1/query", params={"query": "max(bench_bad)"},
                                timeout=2).raise_for_status().content:
            return
        time.sleep(0.2)


def main() -> None:
    """Run the trials and print the latencies against the goal."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--scrape", type=float, default=1.0, help="Prometheus scrape interval, seconds")
    ap.add_argument("--every", type=float, default=0.5, help="guardrail evaluation period, seconds")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gameday-abort-"))
    exporter = Exporter()
    proc, url = start_prometheus(work, exporter.port, args.scrape)
    try:
        latencies = []
        for _ in range(args.trials):
            wait_clear(url)
            latencies.append(trial(url, exporter, args.every, work / "state"))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        exporter.server.shutdown()
        exporter.server.server_close()
        shutil.rmtree(work, ignore_errors=True)
    goal = args.scrape + 2.0
    med = statistics.median(latencies)
    print(
        f"abort latency over {args.trials} trials (scrape {args.scrape:g}s, guardrail every {args.every:g}s)"
    )
    print(f"  min {min(latencies):.3f}s  median {med:.3f}s  max {max(latencies):.3f}s")
    print(
        f"  goal <= {goal:.1f}s (one scrape + 2 s): median/goal {med / goal:.2f}, max/goal {max(latencies) / goal:.2f}"
    )


if __name__ == "__main__":
    main()
