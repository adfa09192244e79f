"""Whole campaigns through the `gameday` CLI against a running lab on the real control plane: smoke, SIGKILL +
reconcile, the kill switch, the janitor after a SIGKILL, CTK import, search-limit."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from blueprints.record import CampaignRecord
from tests.e2e.conftest import E2E, poll


@pytest.fixture(scope="module")
def e2e(e2e_real: E2E) -> E2E:
    """This module's lab: the real control plane."""
    return e2e_real

KILLABLE = """\
# yaml-language-server: $schema=../schema.json
name: killable
owner: tests
hypothesis: {belief: nothing, expectations: ["api_up >= 0 during fault"]}
target:
  cluster: lab
  namespaces: [kube-system]
  blast_radius: {max_nodes: 1, max_pods: 3}
observables: [{name: api_up, query: count(up)}]
baseline: 0s
stages:
  - name: long
    faults:
      - {kind: node-cordon, name: cordon, selector: {names: [NODE], mode: one}}
      - {kind: coredns-outage, name: dns, mode: scale-to-zero}
    observe: 300s
    recovery: 0s
"""


def apps(e2e: E2E) -> Any:
    """An admin AppsV1Api on the lab."""
    from kubernetes import client

    return client.AppsV1Api(e2e.lab.client())


def core(e2e: E2E) -> Any:
    """An admin CoreV1Api on the lab."""
    from kubernetes import client

    return client.CoreV1Api(e2e.lab.client())


def replicas(e2e: E2E, ns: str, name: str) -> int:
    """A Deployment's desired replicas."""
    return int(apps(e2e).read_namespaced_deployment(name, ns).spec.replicas)


def ready_pods(e2e: E2E, ns: str, app: str) -> int:
    """Running pods with label app=APP."""
    pods = core(e2e).list_namespaced_pod(ns, label_selector=f"app={app}").items
    return sum(1 for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp)


def last_run(e2e: E2E, campaign: str) -> Path:
    """The newest run folder of a campaign."""
    runs = sorted((e2e.state / "runs").glob(f"{campaign}-*"))
    assert runs, f"no run folder for {campaign}"
    return runs[-1]


def test_smoke_run_produces_report(e2e: E2E) -> None:
    """`gameday run smoke --target lab --yes` completes, rolls back, and prints where the report is."""
    before = ready_pods(e2e, "inference", "model-server")
    proc = e2e.gameday("run", "blueprints/library/smoke.yaml", "--target", "lab", "--yes")
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    assert "Traceback" not in text
    run_dir = last_run(e2e, "smoke")
    assert str(run_dir / "report" / "report.html") in text.replace("\n", "")
    record = CampaignRecord.model_validate_json((run_dir / "record.json").read_text())
    assert record.status == "completed"
    assert all(f.rollback_ok for s in record.stages for f in s.faults)
    assert (run_dir / "frames.parquet").exists()
    poll(lambda: ready_pods(e2e, "inference", "model-server") >= before, 60, "model-server pods to come back")


def start_killable(e2e: E2E, tmp_path: Path, node: str) -> subprocess.Popen[str]:
    """Start `gameday run` of the KILLABLE campaign on ``node`` and return it once both its faults are in place
    (the node cordoned, CoreDNS at zero)."""
    bp = tmp_path / "killable.yaml"
    bp.write_text(KILLABLE.replace("NODE", node))
    proc = e2e.popen("run", str(bp), "--yes")
    try:
        poll(
            lambda: (
                replicas(e2e, "kube-system", "coredns") == 0 and core(e2e).read_node(node).spec.unschedulable
            ),
            180,
            "both faults to be injected",
        )
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        raise
    return proc


def test_sigkill_mid_stage_then_reconcile_restores_each_object(e2e: E2E, tmp_path: Path) -> None:
    """SIGKILL `gameday run` while a node is cordoned and CoreDNS is at zero; `gameday reconcile` undoes both."""
    node = sorted(n.metadata.name for n in core(e2e).list_node().items)[0]
    dns_before = replicas(e2e, "kube-system", "coredns")
    assert dns_before > 0 and not core(e2e).read_node(node).spec.unschedulable
    proc = start_killable(e2e, tmp_path, node)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert replicas(e2e, "kube-system", "coredns") == 0, "the killed run could not have rolled back"
    result = e2e.gameday("reconcile", "--target", "lab", "--release-lease", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "coredns-outage" in result.stdout and "node-cordon" in result.stdout
    assert replicas(e2e, "kube-system", "coredns") == dns_before
    assert not core(e2e).read_node(node).spec.unschedulable
    again = e2e.gameday("reconcile", "--target", "lab", timeout=120)
    assert "0 open entries" in again.stdout


def test_stop_reverts_a_live_runs_faults_and_the_run_stops(e2e: E2E, tmp_path: Path) -> None:
    """`gameday stop` while a run holds a node cordoned and CoreDNS at zero: both are restored by the time it
    returns, the run stops on its own (cancelled, rolled back) within seconds, and the target is free again."""
    node = min(n.metadata.name for n in core(e2e).list_node().items)
    dns_before = replicas(e2e, "kube-system", "coredns")
    proc = start_killable(e2e, tmp_path, node)
    try:
        result = e2e.gameday("stop", "--target", "lab", timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "took the target from campaign" in result.stdout, result.stdout
        assert replicas(e2e, "kube-system", "coredns") == dns_before
        assert not core(e2e).read_node(node).spec.unschedulable
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    record = CampaignRecord.model_validate_json((last_run(e2e, "killable") / "record.json").read_text())
    assert record.status in ("cancelled", "aborted"), record.status
    assert any("lease lost" in e.message for e in record.events if e.kind == "error"), "the run said why it stopped"
    assert replicas(e2e, "kube-system", "coredns") == dns_before
    again = e2e.gameday("reconcile", "--target", "lab", timeout=120)
    assert "0 open entries" in again.stdout, again.stdout
    smoke = e2e.gameday("run", "blueprints/library/smoke.yaml", "--target", "lab", "--yes", "--dry-run")
    assert smoke.returncode == 0 and "locked" not in (smoke.stdout + smoke.stderr).lower(), smoke.stdout


def test_the_janitor_reverts_a_sigkilled_runs_faults_with_nothing_typed(e2e: E2E, tmp_path: Path) -> None:
    """SIGKILL `gameday run` mid-outage and type nothing: the janitor pod on a lab node (agents/manifests/30-janitor.yaml,
    its own least-privilege service account) puts CoreDNS's replicas back and uncordons the node within the campaign
    Lease's TTL + 60 s, records an Event on the Lease and frees the target for the next run."""
    from kubernetes import client

    from tasks.lease import HEARTBEAT_TTL, LEASE_NAME

    janitor = core(e2e).list_namespaced_pod("gameday", label_selector="app.kubernetes.io/name=gameday-janitor").items
    assert [p.status.phase for p in janitor] == ["Running"], janitor
    assert core(e2e).read_node(janitor[0].spec.node_name).metadata.labels["gameday.dev/node-kind"] == "real"
    node = min(n.metadata.name for n in core(e2e).list_node().items)
    dns_before = replicas(e2e, "kube-system", "coredns")
    proc = start_killable(e2e, tmp_path, node)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    killed = time.monotonic()
    assert replicas(e2e, "kube-system", "coredns") == 0, "the killed run could not have rolled back"
    poll(lambda: replicas(e2e, "kube-system", "coredns") == dns_before and not core(e2e).read_node(node).spec.unschedulable,
         HEARTBEAT_TTL + 60, "the janitor to revert the killed run's faults")
    took = time.monotonic() - killed
    assert took > HEARTBEAT_TTL - 10, f"reverted {took:.0f} s after the kill: before the Lease ran out"
    def reverted_events() -> list[Any]:
        return [e for e in core(e2e).list_namespaced_event("gameday").items
                if e.reason == "CampaignReverted" and "killable" in e.message]

    # the janitor records its Event after the rollback it reports: await it rather than read the list once
    reverted = poll(reverted_events, 30, "the janitor's CampaignReverted Event on the Lease")
    assert "coredns-outage" in reverted[-1].message and "node-cordon" in reverted[-1].message, [
        (e.reason, e.message) for e in reverted]
    assert reverted[-1].reporting_component == "gameday-janitor"
    prom = e2e.lab.endpoints["prometheus"]

    def counted() -> float:
        r = httpx.get(f"{prom}/api/v1/query", params={"query": 'sum(gameday_janitor_reverts_total{outcome="rolled-back"})'})
        result = r.json()["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    poll(lambda: counted() >= 2, 30, "the lab's Prometheus to scrape the janitor's count of its two rollbacks")
    with pytest.raises(client.ApiException) as gone:
        client.CoordinationV1Api(e2e.lab.client()).read_namespaced_lease(LEASE_NAME, "gameday")
    assert gone.value.status == 404
    # the runner machine's own ledger still lists both (the janitor cannot reach it): reconcile there rolls them back
    # again, which changes nothing
    again = e2e.gameday("reconcile", "--target", "lab", timeout=120)
    assert again.returncode == 0 and "2 open entries, 0 failed" in again.stdout, again.stdout
    assert replicas(e2e, "kube-system", "coredns") == dns_before and not core(e2e).read_node(node).spec.unschedulable
    smoke = e2e.gameday("run", "blueprints/library/smoke.yaml", "--target", "lab", "--yes", "--dry-run")
    assert smoke.returncode == 0 and "locked" not in (smoke.stdout + smoke.stderr).lower(), smoke.stdout


def test_a_sigkilled_runs_ephemeral_prefect_server_dies_with_it(e2e: E2E, tmp_path: Path) -> None:
    """`gameday run` without a Prefect server starts an ephemeral one; SIGKILL the runner alone (not its group) and
    that uvicorn process is gone within seconds (the reaper), then reconcile --release-lease reverts the faults and
    frees the slot the dead run held on that ephemeral server."""
    from flows.reaper import _created, descendants

    def servers(pid: int) -> list[int]:
        found = []
        for child in descendants(pid, -1):
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"uvicorn" in argv and b"prefect.server.api.server:create_app" in argv:
                found.append(child)
        return found

    node = min(n.metadata.name for n in core(e2e).list_node().items)
    dns_before = replicas(e2e, "kube-system", "coredns")
    bp = tmp_path / "killable.yaml"
    bp.write_text(KILLABLE.replace("NODE", node))
    env = {k: v for k, v in e2e.env.items() if k != "PREFECT_API_URL"}
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "240"
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # this run's ephemeral server keeps its slot here
    proc = e2e.popen("run", str(bp), "--yes", env=env)
    server: list[int] = []
    try:
        server = poll(lambda: servers(proc.pid), 240, "the ephemeral Prefect server")
        poll(lambda: replicas(e2e, "kube-system", "coredns") == 0, 240, "CoreDNS scaled to zero by the run")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)  # not communicate(): an orphaned server would hold the output pipe open
        poll(lambda: all(_created(pid) is None for pid in server), 20,
             "the orphaned Prefect server to be stopped")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        for pid in server:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    result = subprocess.run([sys.executable, "-m", "flows.cli", "reconcile", "--target", "lab", "--release-lease"],
                            cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                            timeout=240, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert replicas(e2e, "kube-system", "coredns") == dns_before
    assert "freed the Prefect concurrency limit 'gameday-target-lab'" in result.stdout, "the dead run's slot"


def experiment(e2e: E2E) -> dict[str, Any]:
    """A Chaos Toolkit experiment scaling model-server down with chaosk8s, and back in its rollback."""
    scale = "chaosk8s.deployment.actions"
    return {
        "version": "1.0.0",
        "title": "Model server survives a scale-down",
        "description": "Scale model-server to 1 replica, then back to 3.",
        "tags": ["kubernetes"],
        "secrets": {"k8s": {"KUBERNETES_CONTEXT": "lab"}},
        "steady-state-hypothesis": {
            "title": "the gateway answers",
            "probes": [
                {
                    "type": "probe",
                    "name": "prometheus-ready",
                    "tolerance": 200,
                    "provider": {"type": "http", "url": f"{e2e.lab.endpoints['prometheus']}/-/ready"},
                }
            ],
        },
        "method": [
            {
                "type": "action",
                "name": "scale-model-server-down",
                "provider": {
                    "type": "python",
                    "module": scale,
                    "func": "scale_deployment",
                    "secrets": ["k8s"],
                    "arguments": {"name": "model-server", "replicas": 1, "ns": "inference"},
                },
            }
        ],
        "rollbacks": [
            {
                "type": "action",
                "name": "scale-model-server-up",
                "provider": {
                    "type": "python",
                    "module": scale,
                    "func": "scale_deployment",
                    "secrets": ["k8s"],
                    "arguments": {"name": "model-server", "replicas": 3, "ns": "inference"},
                },
            }
        ],
    }


def test_imported_ctk_experiment_runs_as_a_stage(e2e: E2E, tmp_path: Path) -> None:
    """A chaostoolkit-kubernetes experiment imported with import-ctk runs against the lab and is rolled back."""
    exp = tmp_path / "experiment.json"
    exp.write_text(json.dumps(experiment(e2e)))
    bp = tmp_path / "imported.yaml"
    imported = e2e.gameday("import-ctk", str(exp), "-o", str(bp), "--namespace", "inference",
                           "--observable", "apiserver_up=max(up{job=\"apiserver\"})",
                           "--expect", "min(apiserver_up) >= 1 during fault", timeout=60)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    data = yaml.safe_load(bp.read_text())
    assert data["stages"][0]["faults"][0]["rollback"]["name"] == "scale-model-server-up"
    env = {"KUBECONFIG": str(e2e.lab.kubeconfig)}
    proc = e2e.gameday(
        "run",
        str(bp),
        "--yes",
        "--set",
        "baseline=0s",
        "--set",
        "stages[0].observe=2s",
        "--set",
        "stages[0].recovery=0s",
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = CampaignRecord.model_validate_json((last_run(e2e, data["name"]) / "record.json").read_text())
    fault = record.stages[0].faults[0]
    assert fault.kind == "chaostoolkit" and fault.injected_at is not None and fault.rollback_ok
    assert replicas(e2e, "inference", "model-server") == 3


THRESHOLD = """\
name: threshold
owner: tests
hypothesis:
  belief: at least THRESHOLD scrape targets stay up during the fault
  expectations: [{observable: api_up, statistic: min, op: ">=", threshold: 1, window: fault}]
target: {cluster: lab, namespaces: [default], blast_radius: {max_pods: 1}}
observables: [{name: api_up, query: count(up)}]
baseline: 2s
stages:
  - {name: idle, faults: [{kind: noop, name: nothing}], observe: 4s, recovery: 0s}
"""


def test_search_limit_bisects_to_the_breaking_value(e2e: E2E, tmp_path: Path) -> None:
    """`gameday search-limit` runs one guarded campaign per probe and brackets the threshold that breaks it."""
    bp = tmp_path / "threshold.yaml"
    bp.write_text(THRESHOLD)
    proc = e2e.gameday(
        "search-limit",
        str(bp),
        "--param",
        "hypothesis.expectations[0].threshold",
        "--from",
        "1",
        "--to",
        "1000",
        "--resolution",
        "500",
        "--target",
        "lab",
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    probes = [line for line in text.splitlines() if line.startswith("probe ")]
    assert probes[:2] == [
        "probe hypothesis.expectations[0].threshold=1: confirmed",
        "probe hypothesis.expectations[0].threshold=1000: refuted",
    ]
    assert "limit between 1 (held) and 500 (broke)" in text and "safety margin: 1.00x" in text
    assert len(list((e2e.state / "runs").glob("threshold-*"))) == len(probes) == 3
