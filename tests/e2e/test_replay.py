"""The OpenAI 2024-12-11 replay, end to end on a 500-node lab: the cascade happens in the incident's order.

Slow (about 5 minutes: lab up ~20 s, Prefect start, 30 s baseline, ~2 min stage, 60 s recovery), so marked
``slow``. The order of events is read back from the run's record (timeline events) and frames (observables).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
BLUEPRINT = ROOT / "blueprints" / "replays" / "openai-2024-12-11.yaml"
NODES = 500
TIME_SCALE = 3.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def first_time(frames: pd.DataFrame, observable: str, predicate: Any, after: datetime) -> datetime | None:
    """The first sample time at or after ``after`` where ``predicate(value)`` holds (None if never)."""
    rows = frames[(frames["observable"] == observable) & (frames["timestamp"] >= after)].sort_values("timestamp")
    hits = rows[rows["value"].map(predicate)]
    return None if hits.empty else hits.iloc[0]["timestamp"].to_pydatetime()


def event_time(record: dict[str, Any], kind: str, fault: str) -> datetime:
    """When the record's first ``kind`` event for ``fault`` happened."""
    for e in record["events"]:
        if e["kind"] == kind and e.get("fault") == fault:
            return datetime.fromisoformat(e["at"])
    raise AssertionError(f"no {kind} event for {fault} in the record")


def cascade(run_dir: Path) -> dict[str, datetime | None]:
    """The incident's milestones, in their expected order, read from a run directory."""
    record = json.loads((run_dir / "record.json").read_text())
    frames = pd.read_parquet(run_dir / "frames.parquet")
    storm = event_time(record, "inject", "telemetry-daemonset")
    restart = event_time(record, "inject", "coredns-restart")
    rollback = event_time(record, "rollback", "telemetry-daemonset")
    saturation = [t for t in (
        first_time(frames, "storm_429_total", lambda v: v > 0, storm),
        first_time(frames, "api_429_total", lambda v: v > 0, storm),
        first_time(frames, "apiserver_scraped", lambda v: v < 1, storm),
    ) if t is not None]
    dns_fail = first_time(frames, "dns_lookup_failures", lambda v: v > 0, restart)
    servfail = first_time(frames, "dns_servfail_rate", lambda v: v > 0, restart)
    recovered_gw = first_time(frames, "gateway_dns_errors", lambda v: v <= 0, rollback)
    recovered_nodes = first_time(frames, "nodes_ready_ratio", lambda v: v >= 1, rollback)
    return {
        "storm start": storm,
        "API saturated (429 / scrape missed)": min(saturation) if saturation else None,
        "first lease renewal missed": first_time(frames, "lease_renewals_missed", lambda v: v > 0, storm),
        "first node NotReady": first_time(frames, "nodes_ready_ratio", lambda v: v < 1, storm),
        "CoreDNS restarted": restart,
        "first DNS failure": min(t for t in (dns_fail, servfail) if t is not None) if dns_fail or servfail else None,
        "gateway dns errors": first_time(frames, "gateway_dns_errors", lambda v: v > 0, restart),
        "storm rolled back": rollback,
        "recovered": max(recovered_gw, recovered_nodes) if recovered_gw and recovered_nodes else None,
    }


@pytest.fixture(scope="module")
def replay_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Run the replay blueprint through `gameday run` on a 500-node lab; yield the run directory."""
    from tests.conftest import require

    try:
        from lab.testing import running_lab
    except ImportError as e:  # pragma: no cover - the lab is part of this repository
        require(False, f"the lab cannot be imported: {e}")
        raise
    state = tmp_path_factory.mktemp("replay-state")
    env = {**os.environ, "GAMEDAY_STATE_DIR": str(state), "GAMEDAY_LAB_STATE_DIR": str(state / "lab"),
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "240", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "COLUMNS": "200"}
    for var in ("PREFECT_API_URL", "GAMEDAY_PROMETHEUS_URL"):
        env.pop(var, None)
    with running_lab(state / "lab", nodes=NODES, gpu_nodes=0, time_scale=TIME_SCALE, timeout=300):
        proc = subprocess.run([sys.executable, "-m", "flows.cli", "run", str(BLUEPRINT), "--target", "lab", "--yes"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
        runs = sorted((state / "runs").glob("openai-2024-12-11-*"))
        assert runs, f"no run directory; gameday said:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        yield runs[-1]


def test_replay_completes_and_refutes_the_belief(replay_run: Path) -> None:
    """The run completes, every fault verified and rolled back, and the refuted belief is refuted."""
    record = json.loads((replay_run / "record.json").read_text())
    assert record["status"] == "completed", record.get("error")
    faults = [f for s in record["stages"] for f in s["faults"]]
    assert [f["id"] for f in faults] == ["telemetry-daemonset", "saturation-builds", "coredns-restart"]
    assert all(f["rollback_ok"] for f in faults), [f.get("rollback_error") for f in faults]
    results = json.loads((replay_run / "report" / "results.json").read_text())
    assert "refuted" in json.dumps(results).lower()


def test_replay_cascade_happens_in_the_incident_order(replay_run: Path) -> None:
    """Storm < saturation < lease misses < NotReady < CoreDNS restart < DNS failure < gateway errors < rollback < recovery."""
    milestones = cascade(replay_run)
    missing = [name for name, t in milestones.items() if t is None]
    assert not missing, f"milestones never reached: {missing}; {milestones}"
    times = list(milestones.values())
    slack = timedelta(seconds=1)  # one scrape: Prometheus samples every second
    for (a, ta), (b, tb) in zip(list(milestones.items()), list(milestones.items())[1:]):
        assert ta is not None and tb is not None
        assert ta <= tb + slack, f"{a} ({ta:%H:%M:%S}) came after {b} ({tb:%H:%M:%S})"
    assert times[0] is not None and times[-1] is not None and times[0] < times[-1]
