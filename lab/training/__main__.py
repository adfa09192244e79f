"""``python -m lab.training``: run the CPU training job in fresh namespaces until SIGTERM/SIGINT, then clean up."""

from __future__ import annotations

import argparse
import secrets
import signal
import sys
import threading
from pathlib import Path

from lab.training.errors import TrainingError
from lab.training.job import JobConfig, TrainingJob
from lab.training.netns import training_network


def main(argv: list[str] | None = None) -> int:
    """Start the job, print its metrics URL, wait for a signal, stop everything."""
    p = argparse.ArgumentParser(prog="python -m lab.training", description=__doc__)
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--job-id", default=secrets.token_hex(3))
    p.add_argument("--checkpoint-every", type=int, default=10)
    p.add_argument("--timeout", type=float, default=10.0, help="gloo process-group timeout, seconds")
    p.add_argument("--metrics-port", type=int, default=0)
    args = p.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    config = JobConfig(
        checkpoint_every=args.checkpoint_every, timeout_s=args.timeout, metrics_port=args.metrics_port
    )
    try:
        with (
            training_network(args.job_id, args.ranks) as net,
            TrainingJob(args.state_dir, net, config) as job,
        ):
            addresses = " ".join(f"{r.namespace}={r.address}" for r in net.ranks)
            print(f"training job {args.job_id}: metrics {job.metrics_url} ranks {addresses}", flush=True)
            stop.wait()
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
