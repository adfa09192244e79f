"""Runner overhead per stage: 20 stages of zero-length noop faults, gameday's runner vs chaoslib alone.

    .venv/bin/python bench/bench_overhead.py [--stages 20] [--prefect]

gameday: the plain runner (tasks/run/runner.py) with the real fault registry and a real local ledger (each stage
plans, writes the ledger, injects, verifies, observes 0 s, rolls back and settles the ledger); with
``--prefect``, the same stages with every step as a Prefect task inside a flow (a Prefect test server is
started first and not timed). chaoslib: ``chaoslib.experiment.run_experiment`` with 20 python actions
calling a function that does nothing. Prints per-stage milliseconds and the ratio; asserts nothing.

With ``--prefect`` the per-stage figure times ``runner.run()`` inside the flow, the same span as the plain
runner's; the flow run's own start and end (creating it, Prefect's heartbeat thread, which it joins and which
sleeps in 1 s steps, its final state) is printed beside it as a fixed cost per run, and the two together as
"all in". The test server is this benchmark's alone, shares the runner's cores, and is set up for that: its
SQLite database is on tmpfs (the ledger stays on disk), it records task runs in batches (as ``gameday run``'s
ephemeral server does: flows/env.py), and after each timed
run the benchmark waits, untimed, until the server holds every step as a completed task run (it prints how
many it found), so one run's backlog does not slow the next and the server is idle when it is stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
PREFECT_HOME = None if "PREFECT_HOME" in os.environ else tempfile.mkdtemp(prefix="gameday-bench-prefect-")
"""The Prefect home this benchmark made (removed at the end), or None when one was given."""
if PREFECT_HOME is not None:
    os.environ["PREFECT_HOME"] = PREFECT_HOME
from flows.env import prefect_defaults  # noqa: E402 - before Prefect is imported, as the CLI does

prefect_defaults()  # what `gameday run` sets for its ephemeral server: task runs recorded in batches


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


@dataclasses.dataclass
class PrefectRun:
    """What one run through Prefect took and left on the server."""

    per_stage: float
    """Seconds per stage of ``runner.run()`` inside the flow (the plain runner's span)."""
    flow_fixed: float
    """Seconds of the flow run around it: creating it, its heartbeat thread, its final state."""
    task_runs: int
    """Prefect task calls the runner made (every step of every stage)."""
    recorded: int
    """Of them, completed task runs the server holds for the flow run."""


def _counted(ops: Any, calls: list[int]) -> Any:
    """``ops`` with every Prefect step counting its calls into ``calls[0]``."""

    def count(fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            calls[0] += 1
            return fn(*args)

        return call

    steps = ("plan", "record", "inject", "verify", "rollback", "settle")
    return dataclasses.replace(ops, **{name: count(getattr(ops, name)) for name in steps})


def _recorded(flow_run_id: str, expected: int, timeout: float = 120.0) -> int:
    """Wait (untimed) until the server holds ``expected`` completed task runs for the flow run; returns how
    many it holds."""
    from prefect import get_client

    query = {
        "flow_runs": {"id": {"any_": [flow_run_id]}},
        "task_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
    }
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            found = int(client.request("POST", "/task_runs/count", json=query).json())
            if found >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


def run_prefect(stages: int, state: Path) -> PrefectRun:
    """One whole run of the runner with every step as a Prefect task inside a flow."""
    from prefect import flow
    from prefect.runtime import flow_run

    from tasks.steps import prefect_ops

    calls = [0]
    runner = _runner(stages, state, lambda ops: _counted(prefect_ops(ops), calls))
    inside: list[float] = []

    @flow(name="bench-overhead", persist_result=False)
    def bench_flow() -> tuple[str, str]:
        start = time.perf_counter()
        status = runner.run()
        inside.append(time.perf_counter() - start)
        return status, flow_run.get_id() or ""

    start = time.perf_counter()
    status, run_id = bench_flow()
    elapsed = time.perf_counter() - start
    assert status == "completed", status
    recorded = _recorded(run_id, calls[0])
    return PrefectRun(inside[0] / stages, elapsed - inside[0], calls[0], recorded)


@contextmanager
def prefect_test_server(db_dir: Path) -> Iterator[None]:
    """Prefect's test harness with its SQLite database in a new folder under ``db_dir`` (tmpfs; the harness
    removes it at exit): the server subprocess and its database are this benchmark's alone. Callers wait for
    the server to record their runs before leaving."""
    from prefect.testing.utilities import prefect_test_harness

    harness = prefect_test_harness(server_startup_timeout=120)
    saved, tempfile.tempdir = tempfile.tempdir, str(db_dir)  # where the harness makes its database folder
    try:
        harness.__enter__()
    finally:
        tempfile.tempdir = saved
    try:
        yield
    finally:
        harness.__exit__(None, None, None)


def _runner(stages: int, state: Path, wrap: Callable[[Any], Any] | None = None) -> Any:
    """A CampaignRunner over ``stages`` noop stages with a real ledger in ``state``; ``wrap`` turns the plain
    ops into what the runner is given."""
    from tasks.faults import REGISTRY
    from tasks.faults.base import FaultContext
    from tasks.ledger import Ledger
    from tasks.run.connect import plain_ops
    from tasks.run.guardrails import ProbeVerdict
    from tasks.run.recorder import Recorder
    from tasks.run.runner import CampaignRunner

    run_id = f"overhead-{time.monotonic_ns()}"
    ops = plain_ops(REGISTRY, Ledger(state, run_id), lambda p: ProbeVerdict(ok=True))
    if wrap is not None:
        ops = wrap(ops)
    return CampaignRunner(campaign(stages), FaultContext(cluster=None, run_id=run_id), ops, Recorder(run_id))


def run_gameday(stages: int, state: Path) -> float:
    """Seconds per stage for one whole run of the plain runner."""
    runner = _runner(stages, state)
    start = time.perf_counter()
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
        run_gameday(2, state)  # warm imports
        run_chaoslib(2)
        ours = statistics.median(run_gameday(args.stages, state) for _ in range(args.repeat))
        mem = statistics.median(run_gameday(args.stages, shm) for _ in range(args.repeat))
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
            with prefect_test_server(shm.parent):
                run_prefect(2, state)  # warm imports and the server
                runs = [run_prefect(args.stages, state) for _ in range(args.repeat)]
            pre = statistics.median(r.per_stage for r in runs)
            fixed = statistics.median(r.flow_fixed for r in runs)
            whole = statistics.median(r.per_stage + r.flow_fixed / args.stages for r in runs)
            recorded = min(r.recorded for r in runs)
            print(
                f"  gameday runner, Prefect tasks     {pre * 1000:8.3f} ms/stage  ({pre / theirs:.0f}x chaoslib)"
            )
            print(
                f"  (every step a task run: {runs[-1].task_runs} per run, {recorded} recorded completed by"
                f" the server; the flow run around them: {fixed * 1000:.0f} ms per run,"
                f" {whole * 1000:.1f} ms/stage all in)"
            )
    finally:
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)
        if PREFECT_HOME is not None:
            shutil.rmtree(PREFECT_HOME, ignore_errors=True)


if __name__ == "__main__":
    main()
