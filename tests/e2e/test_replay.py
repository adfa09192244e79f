"""The OpenAI 2024-12-11 replays, end to end on one lab on the real control plane: the incident and its serve_stale
variant.

The incident variant must refute "the data plane survives a control-plane overload", with the cascade in the
incident's order; the serve_stale variant (the node-local DNS cache serving stale answers) must confirm "DNS
survives the storm with serve_stale". Both run through `gameday run` on the same lab (200 of kwok's nodes and two
real ones, Kubernetes' 600 APF seats, kube-apiserver in a 360 MiB memory cgroup, 20 s node leases), one after the
other. Slow (see bench/bench_replay.py for the measured phases), so marked ``slow``; CI still runs them.

The kernel's OOM killer kills kube-apiserver when the storm's LISTs pass its cgroup's limit (its supervisor counts
it), so the restarted CoreDNS cannot sync (see lab/README.md, "The replays"); whether its pods sync in one of the
server's short windows between kills is up to this machine's scheduling, so the incident runs up to
``INCIDENT_ATTEMPTS`` times and the tests read the first run that reproduced. The asserted order leaves node
NotReady out: kube-controller-manager writes the Ready condition through the overloaded API server, so NotReady may
land only after the rollback (realistic); ``informational`` reports it. The timeline helpers below are also used by
bench/bench_replay.py.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
REPLAYS = ROOT / "blueprints" / "replays"
INCIDENT, SERVE_STALE = "openai-2024-12-11", "openai-2024-12-11-serve-stale"
REPLAY_LAB: dict[str, Any] = {
    "nodes": 200,
    "real_nodes": 2,
    "max_requests_inflight": 400,  # Kubernetes' APF seat total (400 + 200), as in the incident's clusters
    "max_mutating_requests_inflight": 200,
    "apiserver_memory_mib": 360,  # the cgroup limit: about 260 MiB idle, 440-600 MiB under 200 storm pods
    "node_lease_seconds": 20,
    "node_monitor_grace_seconds": 20,
    "restart_backoff_max_seconds": 20,  # the kubelet's maxContainerRestartPeriod, compressed
    "timeout": 400,
}
"""The replays' lab (`python -m lab up ...` as each blueprint's header says)."""

INCIDENT_ATTEMPTS = 3
"""The incident replay's runs at most: on this 2-core machine the restarted CoreDNS pods sometimes sync in one of the
crash-looping API server's windows (17-41 s up, 10-20 s down) and DNS never fails (reproduced in 7 of 10 runs in
stop 27); the tests use the first run that reproduced, else the last, and every attempt is printed."""

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def frames_of(run_dir: Path) -> pd.DataFrame:
    """The run's observable frames (parquet, else CSV)."""
    parquet = run_dir / "frames.parquet"
    if parquet.exists():
        return pd.read_parquet(parquet)
    frames = pd.read_csv(run_dir / "frames.csv")
    frames["timestamp"] = pd.to_datetime(frames["timestamp"], utc=True)
    return frames


def series(run_dir: Path, observable: str) -> list[float]:
    """Every sample value of one observable, in time order."""
    frames = frames_of(run_dir)
    rows = frames[frames["observable"] == observable].sort_values("timestamp")
    return [float(v) for v in rows["value"]]


def first_time(
    frames: pd.DataFrame, observable: str, predicate: Callable[[float], bool], after: datetime
) -> datetime | None:
    """The first sample time at or after ``after`` where ``predicate(value)`` holds (None if never)."""
    rows = frames[(frames["observable"] == observable) & (frames["timestamp"] >= after)].sort_values(
        "timestamp"
    )
    hits = rows[rows["value"].map(predicate)]
    return None if hits.empty else hits.iloc[0]["timestamp"].to_pydatetime()


def settled_time(
    frames: pd.DataFrame, observable: str, predicate: Callable[[float], bool], after: datetime
) -> datetime | None:
    """The first sample time after ``after`` from which ``predicate`` holds for every later sample."""
    rows = frames[(frames["observable"] == observable) & (frames["timestamp"] >= after)].sort_values(
        "timestamp"
    )
    settled: datetime | None = None
    for ts, value in zip(rows["timestamp"], rows["value"]):
        if predicate(float(value)):
            settled = settled or ts.to_pydatetime()
        else:
            settled = None
    return settled


def event_time(record: dict[str, Any], kind: str, fault: str) -> datetime:
    """When the record's first ``kind`` event for ``fault`` happened."""
    for e in record["events"]:
        if e["kind"] == kind and e.get("fault") == fault:
            return datetime.fromisoformat(e["at"])
    raise AssertionError(f"no {kind} event for {fault} in the record")


def cascade(run_dir: Path) -> dict[str, datetime | None]:
    """The incident's milestones, in their expected order (None: never reached)."""
    record = json.loads((run_dir / "record.json").read_text())
    frames = frames_of(run_dir)
    storm = event_time(record, "inject", "telemetry-daemonset")
    restart = event_time(record, "inject", "coredns-restart")
    rollback = event_time(record, "rollback", "telemetry-daemonset")
    saturation = [
        t
        for t in (
            first_time(frames, "storm_429_total", lambda v: v > 0, storm),
            first_time(frames, "api_429_total", lambda v: v > 0, storm),
            first_time(frames, "apiserver_scraped", lambda v: v < 1, storm),
        )
        if t is not None
    ]
    dns_fail = [
        t
        for t in (
            first_time(frames, "dns_lookup_failures", lambda v: v > 0, restart),
            first_time(frames, "dns_servfail_rate", lambda v: v > 0, restart),
        )
        if t is not None
    ]
    recovered = [
        settled_time(frames, "gateway_dns_errors", lambda v: v <= 0, rollback),
        settled_time(frames, "nodes_ready_ratio", lambda v: v >= 1, rollback),
    ]
    return {
        "storm start": storm,
        "API saturated (429 / scrape missed)": min(saturation) if saturation else None,
        "first lease renewal missed": first_time(frames, "lease_renewals_missed", lambda v: v > 0, storm),
        "CoreDNS restarted": restart,
        "first DNS failure": min(dns_fail) if dns_fail else None,
        "gateway dns errors": first_time(frames, "gateway_dns_errors", lambda v: v > 0, restart),
        "storm rolled back": rollback,
        "recovered": None if None in recovered else max(t for t in recovered if t is not None),
    }


def informational(run_dir: Path) -> dict[str, str]:
    """What the order does not assert, relative to the storm start: first node NotReady, DNS failure kind."""
    record = json.loads((run_dir / "record.json").read_text())
    frames = frames_of(run_dir)
    storm = event_time(record, "inject", "telemetry-daemonset")
    rollback = event_time(record, "rollback", "telemetry-daemonset")
    not_ready = first_time(frames, "nodes_ready_ratio", lambda v: v < 1, storm)
    out = {
        "first node NotReady": "never"
        if not_ready is None
        else f"{(not_ready - storm).total_seconds():+.0f} s"
        + (" (after rollback)" if not_ready > rollback else "")
    }
    servfail = first_time(frames, "dns_servfail_rate", lambda v: v > 0, storm)
    out["first SERVFAIL answer"] = (
        "never" if servfail is None else f"{(servfail - storm).total_seconds():+.0f} s"
    )
    return out


def api_ready(lab: Path) -> bool:
    """Whether the lab's API server answers /readyz within 2 s (kubectl with the lab's kubeconfig)."""
    return subprocess.run(["kubectl", "--kubeconfig", str(lab / "kubeconfig"), "get", "--raw", "/readyz",
                           "--request-timeout=2s"], capture_output=True, check=False).returncode == 0


def gateway_serving(lab: Path, name: str) -> bool:
    """Whether the blueprint's own ``gateway-serving`` steady-state check holds now (its query on the lab's
    Prometheus, within its tolerance's range)."""
    blueprint = yaml.safe_load((REPLAYS / f"{name}.yaml").read_text())
    check = next(c for c in blueprint["steady_state"] if c["name"] == "gateway-serving")
    low, high = check["tolerance"]["range"]
    prometheus = json.loads((lab / "endpoints.json").read_text())["prometheus"]
    resp = httpx.get(f"{prometheus}/api/v1/query", params={"query": check["query"]}, timeout=5).raise_for_status()
    result = resp.json()["data"]["result"]
    return bool(result) and low <= float(result[0]["value"][1]) <= high


def run_blueprint(name: str, state: Path, lab: Path, env: dict[str, str]) -> Path:
    """`gameday run` one replay on the lab at ``lab`` once it is healthy, as an operator waits for a healthy cluster
    before a game day: its API server ready and the gateway serving (the blueprint's steady state); return the run
    directory."""
    from lab.runtime.testing import wait_for

    wait_for(lambda: api_ready(lab) and api_ready(lab), 120, "the lab's API server ready")
    wait_for(lambda: gateway_serving(lab, name), 120, "the gateway serving (the blueprint's steady state)")
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", str(REPLAYS / f"{name}.yaml"), "--target", "lab", "--yes"],
        cwd=ROOT,
        env={**env, "GAMEDAY_LAB_STATE_DIR": str(lab)},
        capture_output=True,
        text=True,
        timeout=840,  # serve-stale alone took over 9 min on this 2-core machine (stop 25)
        check=False,
    )
    runs = sorted((state / "runs").glob(f"{name}-2*"))
    assert runs, f"no run directory for {name}; gameday said:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return runs[-1]


@pytest.fixture(scope="module")
def replay_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Both replays through `gameday run`, each on a fresh lab on the real control plane (a crash-looped API server
    idles near its limit afterwards, and an attempt must not inherit the last one's damage); yield their run
    directories."""
    from lab.testing import running_control_plane
    from tests.conftest import require

    require(os.geteuid() == 0, "the real plane's own nodes (pod network, sandboxes) need root")
    state = tmp_path_factory.mktemp("replay-state")
    env = {
        **os.environ,
        "GAMEDAY_STATE_DIR": str(state),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "240",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "COLUMNS": "200",
    }
    for var in ("PREFECT_API_URL", "GAMEDAY_PROMETHEUS_URL"):
        env.pop(var, None)

    labs = itertools.count(1)

    def on_a_fresh_lab(name: str) -> Path:
        lab = state / f"lab-{next(labs)}"
        with running_control_plane(lab, **REPLAY_LAB):
            return run_blueprint(name, state, lab, env)

    def run(name: str) -> Path:
        if name != INCIDENT:
            return on_a_fresh_lab(name)
        for attempt in range(1, INCIDENT_ATTEMPTS + 1):
            run_dir = on_a_fresh_lab(name)
            reached = cascade(run_dir)
            print(f"\nincident replay attempt {attempt}: DNS failed: {reached['first DNS failure'] is not None}, "
                  f"gateway DNS errors: {reached['gateway dns errors'] is not None}")
            if reached["gateway dns errors"] is not None:
                break
        return run_dir

    yield _LazyRuns(run)


class _LazyRuns(dict[str, Path]):
    """Runs a replay the first time a test asks for it."""

    def __init__(self, run: Any) -> None:
        super().__init__()
        self._run = run

    def __missing__(self, name: str) -> Path:
        self[name] = self._run(name)
        return self[name]


def load(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's record and its report's results."""
    record = json.loads((run_dir / "record.json").read_text())
    return record, json.loads((run_dir / "report" / "results.json").read_text())


def assert_completed(record: dict[str, Any], faults: list[str]) -> None:
    """The run completed with exactly these faults, every one rolled back."""
    assert record["status"] == "completed", record.get("error")
    done = [f for s in record["stages"] for f in s["faults"]]
    assert [f["id"] for f in done] == faults
    assert all(f["rollback_ok"] for f in done), [f.get("rollback_error") for f in done]


def test_incident_replay_refutes_the_belief(replay_runs: dict[str, Path]) -> None:
    """The incident replay completes, every fault rolled back, and the report refutes the data-plane belief."""
    record, results = load(replay_runs[INCIDENT])
    assert_completed(record, ["telemetry-daemonset", "saturation-builds", "coredns-restart"])
    assert results["overall"]["verdict"] == "refuted", results["overall"]
    refuted = {
        e["result"]["observable"] for e in results["expectations"] if e["result"]["verdict"] == "refuted"
    }
    assert "gateway_dns_errors" in refuted, refuted


def test_incident_replay_oom_kills_the_api_server_and_it_stays_up_after_mitigation(
    replay_runs: dict[str, Path],
) -> None:
    """The storm gets kube-apiserver OOM-killed by the kernel more than once in the run (it crash-loops, restarted by
    its supervisor) and after the rollback it stays up."""
    run_dir = replay_runs[INCIDENT]
    record = json.loads((run_dir / "record.json").read_text())
    frames = frames_of(run_dir)
    kills = [v for v in series(run_dir, "apiserver_oom_kills") if not math.isnan(v)]
    assert kills and max(kills) - min(kills) >= 2, kills
    restarts = [v for v in series(run_dir, "apiserver_restarts") if not math.isnan(v)]
    assert restarts and max(restarts) - min(restarts) >= 1, restarts
    rollback = event_time(record, "rollback", "telemetry-daemonset")
    assert settled_time(frames, "apiserver_scraped", lambda v: v >= 1, rollback) is not None


def test_incident_cascade_happens_in_the_incident_order(replay_runs: dict[str, Path]) -> None:
    """Storm < saturation < lease miss < CoreDNS restart < DNS failure < gateway DNS errors < rollback < recovery."""
    run_dir = replay_runs[INCIDENT]
    milestones = cascade(run_dir)
    print("\nmilestones:", {k: v and f"{v:%H:%M:%S}" for k, v in milestones.items()})
    print("informational:", informational(run_dir))
    missing = [name for name, t in milestones.items() if t is None]
    assert not missing, f"milestones never reached: {missing}; {milestones}"
    items = list(milestones.items())
    for (a, ta), (b, tb) in itertools.pairwise(items):
        assert ta is not None and tb is not None
        assert ta <= tb, f"{a} ({ta:%H:%M:%S}) came after {b} ({tb:%H:%M:%S})"


def test_serve_stale_replay_confirms_dns_survives(replay_runs: dict[str, Path]) -> None:
    """With serve_stale in the node-local cache the belief is confirmed: stale answers carried DNS within its error budget."""
    run_dir = replay_runs[SERVE_STALE]
    record, results = load(run_dir)
    assert_completed(record, ["telemetry-daemonset", "saturation-builds", "coredns-restart"])
    assert [f["id"] for f in record["setup"]] == ["node-local-serve-stale", "node-local-cache-warms"]
    assert all(f["rollback_ok"] for f in record["setup"]), [f.get("rollback_error") for f in record["setup"]]
    assert results["overall"]["verdict"] == "confirmed", results["overall"]
    assert max(series(run_dir, "dns_stale_served")) > 0
    assert max(series(run_dir, "gateway_dns_error_ratio")) <= 0.02
    incident_peak = max(series(replay_runs[INCIDENT], "gateway_dns_errors"))
    assert incident_peak > 10 * max(series(run_dir, "gateway_dns_errors")), "no contrast with the incident"
