"""Runner overhead per stage: 20 stages of zero-length noop faults, gameday's runner vs chaoslib alone.

    .venv/bin/python bench/bench_overhead.py [--stages 20] [--prefect]

gameday: the plain runner (tasks/run/runner.py) with the real fault registry and a real local ledger (each stage
plans, writes the ledger, injects, verifies, observes 0 s, rolls back and settles the ledger); with
``--prefect``, the same stages with every step as a Prefect task inside a flow (a Prefect test server is
started first and not timed). chaoslib: ``chaoslib.experiment.run_experiment`` with 20 python actions
calling a function that does nothing. Prints per-stage milliseconds and the ratio; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="gameday-bench-prefect-"))


def noop_action() -> None:
    """The chaoslib action: does nothing."""


def campaign(stages: int) -> Any:
    """A campaign of ``stages`` zero-length noop stages."""
    from blueprints import parse

    body = "\n".join(
        f"  - {{name: s{i}, faults: [{{kind: noop}}], observe: 0s, recovery: 0s}}" for i in range(stages)
    )
    return parse(f"""
name: overhead
owner: bench
hypothesis: {{belief: none, expectations: ["x >= 0 during fault"]}}
target: {{cluster: lab, namespaces: [default], blast_radius: {{max_pods: 0}}}}
observables: [{{name: x, query: up}}]
baseline: 0s
stages:
{body}
""")


def run_gameday(stages: int, state: Path, prefect: bool) -> float:
    """Seconds per stage for one whole run of the runner."""
    from tasks.faults import REGISTRY
    from tasks.faults.base import FaultContext
    from tasks.ledger import Ledger
    from tasks.run.connect import plain_ops
    from tasks.run.guardrails import ProbeVerdict
    from tasks.run.recorder import Recorder
    from tasks.run.runner import CampaignRunner

    run_id = f"overhead-{time.monotonic_ns()}"
    ops = plain_ops(REGISTRY, Ledger(state, run_id), lambda p: ProbeVerdict(ok=True))
    if prefect:
        from tasks.steps import prefect_ops

        ops = prefect_ops(ops)
    runner = CampaignRunner(
        campaign(stages), FaultContext(cluster=None, run_id=run_id), ops, Recorder(run_id)
    )
    start = time.perf_counter()
    if prefect:
        from prefect import flow

        @flow(name="bench-overhead", persist_result=False)
        def bench_flow() -> str:
            return runner.run()

        status = bench_flow()
    else:
        status = runner.run()
    elapsed = time.perf_counter() - start
    assert status == "completed", status
    return elapsed / stages


def run_chaoslib(stages: int) -> float:
    """Seconds per action for chaoslib.experiment.run_experiment with ``stages`` noop python actions."""
    import logging

    from chaoslib.experiment import run_experiment

    logging.getLogger("chaostoolkit").setLevel(logging.ERROR)
    exp = {
        "version": "1.0.0",
        "title": "overhead",
        "description": "noop actions",
        "method": [
            {
                "type": "action",
                "name": f"a{i}",
                "provider": {"type": "python", "module": "__main__", "func": "noop_action"},
            }
            for i in range(stages)
        ],
    }
    start = time.perf_counter()
    journal = run_experiment(exp, settings={})
    elapsed = time.perf_counter() - start
    assert journal["status"] == "completed", journal["status"]
    return elapsed / stages


def main() -> None:
    """Run both a few times and print the medians side by side."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--stages", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--prefect", action="store_true", help="also time the runner with Prefect tasks")
    args = ap.parse_args()
    state = Path(tempfile.mkdtemp(prefix="gameday-bench-"))
    shm = (
        Path(tempfile.mkdtemp(prefix="gameday-bench-", dir="/dev/shm"))
        if Path("/dev/shm").is_dir()
        else state
    )
    try:
        run_gameday(2, state, False)  # warm imports
        run_chaoslib(2)
        ours = statistics.median(run_gameday(args.stages, state, False) for _ in range(args.repeat))
        mem = statistics.median(run_gameday(args.stages, shm, False) for _ in range(args.repeat))
        theirs = statistics.median(run_chaoslib(args.stages) for _ in range(args.repeat))
        print(f"{args.stages} stages x {args.repeat} runs (median per stage)")
        print(f"  chaoslib run_experiment           {theirs * 1000:8.3f} ms/action")
        print(
            f"  gameday runner, ledger on disk    {ours * 1000:8.3f} ms/stage  ({ours / theirs:.0f}x chaoslib)"
        )
        print(
            f"  gameday runner, ledger on tmpfs   {mem * 1000:8.3f} ms/stage  ({mem / theirs:.0f}x chaoslib)"
        )
        print(
            "  (each stage writes the ledger 3 times, fsync'd: record, applied, rolled-back; chaoslib keeps"
            " no durable record)"
        )
        if args.prefect:
            from prefect.testing.utilities import prefect_test_harness

            with prefect_test_harness(server_startup_timeout=120):
                run_gameday(2, state, True)
                pre = statistics.median(
                    run_gameday(args.stages, state, True) for _ in range(max(1, args.repeat // 2))
                )
            print(
                f"  gameday runner, Prefect tasks     {pre * 1000:8.3f} ms/stage  ({pre / theirs:.0f}x chaoslib)"
            )
    finally:
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)


if __name__ == "__main__":
    main()
