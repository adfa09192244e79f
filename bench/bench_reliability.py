"""Nothing left broken when the runner is SIGKILLed at random moments, with no command typed: figures, no assertions.

Starts a lab on the real control plane with gameday's janitor as a pod (``lab up --real-nodes 2
--gpu-nodes 1 --janitor``; root). For each blueprint it first runs it once to the end (its duration D and a check
that it completes, and the span from its first ledger write to its last rollback, when faults are in place), then,
``--kills`` times in all, round-robin over the blueprints: snapshots every object the stock faults touch, starts
``gameday run BLUEPRINT --target lab --yes`` in its own process group, SIGKILLs the group at a moment drawn
uniformly from that span (``--anywhere``: from [0, D), startup and baseline included; seeded), and waits, typing nothing, until the snapshot equals the one from
before (bounded: the campaign Lease's TTL + 60 s). Prints, per blueprint and in all: kills, faults left (objects still
different at the bound), time to restore after the kill (min / median / max), and what was left where anything was.

The campaign Lease's TTL is ``--lease-ttl`` (``GAMEDAY_LEASE_TTL_S``; 90 s by default in gameday, 15 s here so 50
kills fit in under an hour); windows are shortened with ``--set`` so each run is about a minute.

    .venv/bin/python bench/bench_reliability.py                   # 50 kills over the three default blueprints
    .venv/bin/python bench/bench_reliability.py --kills 9 --seed 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHORT = ["baseline=5s", "final_recovery=1s"]
BLUEPRINTS: dict[str, list[str]] = {
    # CoreDNS scaled to zero (the README's demo)
    "coredns-outage": SHORT + ["stages[0].observe=20s", "stages[0].recovery=5s"],
    # a client storm with 1,000 ballast ConfigMaps and break-glass APF objects: several objects from one fault
    "control-plane-storm": SHORT + ["stages[0].observe=20s", "stages[0].recovery=5s"],
    # a node cordoned and CoreDNS at zero in one stage (two faults), from the stock pieces
    "two-faults": [],
}
TWO_FAULTS = """\
# yaml-language-server: $schema=../schema.json
name: two-faults
owner: bench
hypothesis: {belief: the inference gateway keeps answering, expectations: ["min(api_up) >= 1 during fault"]}
target:
  cluster: lab
  namespaces: [kube-system]
  blast_radius: {max_nodes: 1, max_pods: 3}
observables: [{name: api_up, query: count(up)}]
baseline: 5s
stages:
  - name: both
    faults:
      - {kind: node-cordon, name: cordon, selector: {names: [lab-node-1], mode: one}}
      - {kind: coredns-outage, name: dns, mode: scale-to-zero}
    observe: 20s
    recovery: 5s
final_recovery: 1s
"""


def snapshot(kubeconfig: Path) -> dict[str, Any]:
    """Every object the stock faults touch, as comparable values."""
    from kubernetes import client, config

    api = config.new_client_from_config(str(kubeconfig), context="lab-admin")
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    flow, net = client.FlowcontrolApiserverV1Api(api), client.NetworkingV1Api(api)
    try:
        return {
            "coredns_replicas": apps.read_namespaced_deployment("coredns", "kube-system").spec.replicas,
            "corefile": core.read_namespaced_config_map("coredns", "kube-system").data,
            "cordoned": sorted(n.metadata.name for n in core.list_node().items if n.spec.unschedulable),
            "network_policies": sorted(f"{p.metadata.namespace}/{p.metadata.name}"
                                       for p in net.list_network_policy_for_all_namespaces().items),
            "flowschemas": sorted(s.metadata.name for s in flow.list_flow_schema().items),
            "priority_levels": sorted(p.metadata.name for p in flow.list_priority_level_configuration().items),
            "ballast": len(core.list_config_map_for_all_namespaces(label_selector="gameday.dev/ballast").items),
            "daemonsets": sorted(f"{d.metadata.namespace}/{d.metadata.name}"
                                 for d in apps.list_daemon_set_for_all_namespaces().items),
            "namespaces": sorted(n.metadata.name for n in core.list_namespace().items),
            "storms": _storms(),
        }
    finally:
        api.close()


def steady(kubeconfig: Path, timeout: float = 120.0) -> None:
    """Wait (bounded) until CoreDNS has all its replicas ready, as every stock blueprint's steady state asks."""
    from kubernetes import client, config

    api = config.new_client_from_config(str(kubeconfig), context="lab-admin")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            d = client.AppsV1Api(api).read_namespaced_deployment("coredns", "kube-system")
            if d.spec.replicas and (d.status.ready_replicas or 0) >= d.spec.replicas:
                return
            time.sleep(1)
    finally:
        api.close()


def _storms() -> int:
    """Live client-storm processes of this benchmark's campaigns (their tag starts with the campaign's name)."""
    from tasks.faults.storm_process import MODULE

    count = 0
    for entry in Path("/proc").iterdir():
        try:
            args = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0")]
        except OSError:
            continue
        tag = args[args.index("--tag") + 1] if MODULE in args and "--tag" in args[:-1] else ""
        count += any(tag.startswith(f"{name}-") for name in BLUEPRINTS)
    return count


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The keys whose values differ, each with both values."""
    return [f"{k}: {before[k]!r} -> {after.get(k)!r}" for k in before if before[k] != after.get(k)]


def hurt_window(state: Path, campaign: str, started: float) -> tuple[float, float]:
    """(from, to) in seconds after the process started: its newest run's first ledger write to its last rollback."""
    from datetime import datetime

    run = max((state / "runs").glob(f"{campaign}-*"))
    events = json.loads((run / "record.json").read_text())["events"]
    at = [(datetime.fromisoformat(e["at"]).timestamp() - started, e["kind"]) for e in events]
    first = min(t for t, k in at if k in ("ledger", "inject"))
    last = max(t for t, k in at if k in ("rollback", "rollback-failed"))
    return first, last


def run_once(bp: str, sets: list[str], env: dict[str, str], kill_at: float | None) -> tuple[float, float]:
    """(seconds the run lived, when it ended on the monotonic clock); SIGKILLs its group ``kill_at`` s in."""
    cmd = [sys.executable, "-m", "flows.cli", "run", bp, "--target", "lab", "--yes"]
    for s in sets:
        cmd += ["--set", s]
    start = time.monotonic()
    env["BENCH_STARTED"] = repr(time.time())  # read back by hurt_window (the run's own clock is UTC wall time)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        proc.wait(timeout=kill_at)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    return time.monotonic() - start, time.monotonic()


def main() -> None:
    """Lab up, one whole run per blueprint, then the kills; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--lease-ttl", type=float, default=15.0)
    parser.add_argument("--blueprints", default=",".join(BLUEPRINTS))
    parser.add_argument("--anywhere", action="store_true",
                        help="draw kill moments over the whole run (startup, preflight, baseline included), not only "
                             "from its first ledger write to its last rollback")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the lab is taken down on a plain kill too
    from lab.testing import running_control_plane

    rng = random.Random(args.seed)
    names = args.blueprints.split(",")
    with tempfile.TemporaryDirectory(prefix="gameday-reliability-") as tmp:
        state = Path(tmp)
        (state / "two-faults.yaml").write_text(TWO_FAULTS)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GAMEDAY_", "PREFECT_"))}
        env.update(GAMEDAY_STATE_DIR=str(state), GAMEDAY_LEASE_TTL_S=str(args.lease_ttl),
                   PREFECT_SERVER_ANALYTICS_ENABLED="false")
        t0 = time.monotonic()
        with running_control_plane(state / "lab", nodes=1, real_nodes=2, gpu_nodes=1, janitor=True,
                                   node_lease_seconds=8, node_monitor_grace_seconds=12,
                                   node_monitor_period_seconds=2) as lab:
            print(f"lab up in {time.monotonic() - t0:.0f} s (janitor pod, lease TTL {args.lease_ttl:g} s)", flush=True)
            kubeconfig = lab.kubeconfig
            baseline = snapshot(kubeconfig)
            windows: dict[str, tuple[float, float]] = {}
            for name in names:
                bp = str(state / "two-faults.yaml") if name == "two-faults" else name
                lived, _ = run_once(bp, BLUEPRINTS[name], env, None)
                windows[name] = (0.0, lived) if args.anywhere else hurt_window(
                    state, name, float(env["BENCH_STARTED"]))
                left = diff(baseline, snapshot(kubeconfig))
                print(f"{name}: a whole run takes {lived:.0f} s, kills drawn from {windows[name][0]:.1f} to "
                      f"{windows[name][1]:.1f} s; after it: {left or 'all as before'}", flush=True)
            results: list[dict[str, Any]] = []
            for k in range(args.kills):
                name = names[k % len(names)]
                bp = str(state / "two-faults.yaml") if name == "two-faults" else name
                steady(kubeconfig)  # a campaign refused at preflight (CoreDNS still starting) would prove nothing
                before = snapshot(kubeconfig)
                kill_at = rng.uniform(*windows[name])
                lived, killed = run_once(bp, BLUEPRINTS[name], env, kill_at)
                at_kill = diff(before, snapshot(kubeconfig))  # what the killed run had in place
                bound = killed + args.lease_ttl + 60
                restored_at = None
                while time.monotonic() < bound:
                    if not diff(before, snapshot(kubeconfig)):
                        restored_at = time.monotonic()
                        break
                    time.sleep(1)
                left = diff(before, snapshot(kubeconfig))
                results.append({"blueprint": name, "kill_at": kill_at, "finished": lived < kill_at,
                                "in_place": at_kill, "left": left,
                                "restore_s": None if restored_at is None else restored_at - killed})
                state_at_kill = f"{len(at_kill)} object(s) changed" if at_kill else "nothing in place yet"
                print(f"kill {k + 1:2d}/{args.kills} {name:20s} at {kill_at:5.1f} s ({state_at_kill}): "
                      + (f"restored {restored_at - killed:5.1f} s after" if restored_at else f"LEFT {left}"),
                      flush=True)
        print("\nblueprint            kills  with faults in place  faults left  restore s after the kill, of those "
              "(min / median / max)")
        for name in [*names, "all"]:
            rows = [r for r in results if name in ("all", r["blueprint"])]
            hurt = [r for r in rows if r["in_place"]]
            times = [r["restore_s"] for r in hurt if r["restore_s"] is not None]
            spread = (f"{min(times):5.1f} / {statistics.median(times):5.1f} / {max(times):5.1f}" if times else "-")
            print(f"{name:20s} {len(rows):5d} {len(hurt):21d} {sum(len(r['left']) for r in rows):12d}  {spread}")
        print(json.dumps({"kills": len(results), "with_faults_in_place": sum(bool(r["in_place"]) for r in results),
                          "left": sum(len(r["left"]) for r in results), "lease_ttl_s": args.lease_ttl,
                          "seed": args.seed}))


if __name__ == "__main__":
    main()
