"""How long each phase of the OpenAI 2024-12-11 replay takes on this machine.

Either measure an existing run directory (``--run-dir``) or do a whole replay: ``lab up`` on the real control
plane (200 of kwok's nodes, two real nodes, 600 APF seats, kube-apiserver in a 360 MiB memory cgroup, 20 s leases;
root), ``gameday run blueprints/replays/<variant>.yaml``, ``lab down``. Prints wall-clock
seconds per phase, the cascade's milestones relative to the storm start (plus what the e2e test does not
assert: first node NotReady, first SERVFAIL), and each phase's share of the 10-minute budget. Prints,
never asserts.

    .venv/bin/python bench/bench_replay.py                         # the incident replay (about 5 minutes)
    .venv/bin/python bench/bench_replay.py --variant openai-2024-12-11-serve-stale
    .venv/bin/python bench/bench_replay.py --run-dir DIR           # an existing run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REPLAYS = ROOT / "blueprints" / "replays"
BUDGET_S = 600.0


def _events(record: dict[str, object]) -> list[tuple[datetime, str, str]]:
    out = []
    for e in record["events"]:  # type: ignore[attr-defined]
        out.append((datetime.fromisoformat(e["at"]), e["kind"], e.get("fault") or e.get("stage") or ""))
    return out


def phases(run_dir: Path) -> list[tuple[str, float]]:
    """(phase, seconds) from a run's record: preflight, setup, baseline, each fault's inject+verify, observe, rollback,
    recovery."""
    record = json.loads((run_dir / "record.json").read_text())
    ev = _events(record)

    def at(kind: str, what: str = "") -> datetime:
        return next(t for t, k, w in ev if k == kind and (not what or w == what))

    start, end = datetime.fromisoformat(record["started_at"]), datetime.fromisoformat(record["ended_at"])
    checked = [(t, w) for t, k, w in ev if k in ("verified", "verify-failed")]
    prev = at("preflight")
    out = [("preflight", (prev - start).total_seconds())]
    for t, w in (c for c in checked if c[0] < at("baseline-start")):  # the blueprint's setup, before the baseline
        out.append((f"setup {w}", (t - prev).total_seconds()))
        prev = t
    out.append(("baseline", (at("baseline-end") - at("baseline-start")).total_seconds()))
    prev = at("stage-start")
    for t, w in (c for c in checked if c[0] > prev):
        out.append((f"inject+verify {w}", (t - prev).total_seconds()))
        prev = t
    first_rb = min(t for t, k, _ in ev if k == "rollback")
    out.append(("observe", (first_rb - prev).total_seconds()))
    out.append(("rollback", (at("recovery-start") - first_rb).total_seconds()))
    out.append(("recovery", (at("stage-end") - at("recovery-start")).total_seconds()))
    out.append(("final recovery, setup rollback + report", (end - at("stage-end")).total_seconds()))
    return out


def report(run_dir: Path, outer: list[tuple[str, float]]) -> None:
    """Print the phases, the milestones and the budget shares."""
    from tests.e2e.test_replay import cascade, informational

    rows = outer[:1] + phases(run_dir) + outer[1:]
    total = sum(s for _, s in rows)
    print(f"{'phase':44} {'seconds':>8} {'of 10 min':>9}")
    for name, secs in rows:
        print(f"{name:44} {secs:8.1f} {secs / BUDGET_S:9.1%}")
    print(f"{'total':44} {total:8.1f} {total / BUDGET_S:9.1%}")
    print("\nmilestones (seconds after the storm started):")
    ms = cascade(run_dir)
    t0 = ms["storm start"]
    for name, t in ms.items():
        print(f"  {name:40} {'never' if t is None or t0 is None else f'{(t - t0).total_seconds():+7.1f}'}")
    for name, text in informational(run_dir).items():
        print(f"  {name:40} {text} (informational)")


def main() -> int:
    """Run or read a replay and print its phases."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", type=Path, help="an existing run directory (record.json + frames.parquet)")
    ap.add_argument("--variant", default="openai-2024-12-11", help="blueprint name under blueprints/replays/")
    ap.add_argument("--nodes", type=int, default=200, help="kwok's nodes")
    ap.add_argument("--apiserver-memory", type=float, default=360.0, help="kube-apiserver's memory cgroup limit (MiB)")
    args = ap.parse_args()
    if args.run_dir:
        report(args.run_dir, [])
        return 0
    state = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    lab_dir = state / "lab"
    env = {**os.environ, "GAMEDAY_STATE_DIR": str(state), "GAMEDAY_LAB_STATE_DIR": str(lab_dir),
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "240"}
    py = sys.executable
    try:
        t = time.monotonic()
        subprocess.run([py, "-m", "lab", "up", "--nodes", str(args.nodes), "--real-nodes", "2", "--gpu-nodes", "0",
                        "--max-requests-inflight", "400", "--max-mutating-requests-inflight", "200",
                        "--apiserver-memory", f"{args.apiserver_memory:g}", "--node-lease-seconds", "20",
                        "--node-monitor-grace", "20", "--state-dir", str(lab_dir), "--timeout", "400"],
                       cwd=ROOT, env=env, check=True, capture_output=True, timeout=500)
        lab_up = time.monotonic() - t
        t = time.monotonic()
        proc = subprocess.run([py, "-m", "flows.cli", "run", str(REPLAYS / f"{args.variant}.yaml"), "--target", "lab", "--yes"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
        run_s = time.monotonic() - t
        runs = sorted((state / "runs").glob(f"{args.variant}-2*"))
        if not runs:
            print(proc.stdout[-2000:], proc.stderr[-2000:])
            return 1
        record = json.loads((runs[-1] / "record.json").read_text())
        inside = (datetime.fromisoformat(record["ended_at"]) - datetime.fromisoformat(record["started_at"]))
        report(runs[-1], [(f"lab up ({args.nodes} kwok + 2 real nodes)", lab_up),
                          ("CLI start-up + Prefect + report", run_s - inside.total_seconds())])
        print(f"\nrun directory: {runs[-1]}")
        return 0
    finally:
        subprocess.run([py, "-m", "lab", "down", "--state-dir", str(lab_dir)], cwd=ROOT, env=env,
                       capture_output=True, timeout=120, check=False)


if __name__ == "__main__":
    sys.exit(main())
