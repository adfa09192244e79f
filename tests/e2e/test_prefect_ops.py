"""Gameday as a Prefect project: real server, process worker, `prefect deploy --all`, runs against a small lab."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blueprints.record import CampaignRecord
from tests.e2e.conftest import FINAL, Ops, prefect_stack, wait_until

HEAD = """\
name: {name}
owner: tests
hypothesis: {{belief: nothing breaks, expectations: ["api_up >= 0 during fault"]}}
target: {{cluster: lab, namespaces: [kube-system], blast_radius: {{max_nodes: 1, max_pods: 3}}}}
observables: [{{name: api_up, query: count(up)}}]
baseline: 0s
stages:
"""
APPROVED = """\
  - name: cordon
    approval: required
    approval_timeout: 180s
    faults: [{{kind: node-cordon, name: cordon, selector: {{names: [{node}], mode: one}}}}]
    observe: 2s
    recovery: 1s
"""
LONG = """\
  - name: long
    faults:
      - {{kind: node-cordon, name: cordon, selector: {{names: [{node}], mode: one}}}}
      - {{kind: coredns-outage, name: dns, mode: scale-to-zero}}
    observe: 300s
    recovery: 0s
"""
IDLE = """\
  - name: idle
    faults: [{{kind: noop, name: nothing}}]
    observe: 300s
    recovery: 0s
"""


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ops]:
    """One Prefect server + worker + deployments + lab for the whole module, stopped by PID afterwards."""
    with prefect_stack(tmp_path_factory.mktemp("prefect-ops")) as stack:
        yield stack


def write_blueprint(tmp_path: Path, name: str, stage: str, node: str) -> str:
    """A short test blueprint in tmp_path; its path."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(HEAD.format(name=name) + stage.format(node=node))
    return str(path)


def core(ops: Ops) -> Any:
    """An admin CoreV1Api on the lab."""
    from kubernetes import client

    return client.CoreV1Api(ops.lab.client())


def apps(ops: Ops) -> Any:
    """An admin AppsV1Api on the lab."""
    from kubernetes import client

    return client.AppsV1Api(ops.lab.client())


def first_node(ops: Ops) -> str:
    """The lab's first node by name."""
    return str(min(n.metadata.name for n in core(ops).list_node().items))


def run_dir(ops: Ops, campaign: str) -> Path:
    """The newest run folder of a campaign."""
    runs = sorted((ops.state / "runs").glob(f"{campaign}-*"))
    assert runs, f"no run folder for {campaign}"
    return runs[-1]


def test_deployed_campaign_pauses_for_approval_and_completes(ops: Ops, tmp_path: Path) -> None:
    """A deployment triggered through the API pauses, is approved through the API, and leaves record, report, artifact."""
    assert {
        "smoke",
        "coredns-outage",
        "weekly-game-day",
        "replay-openai-2024-12-11",
        "reconcile-hourly",
    } <= set(ops.deployments)
    bp = write_blueprint(tmp_path, "ops-approve", APPROVED, first_node(ops))
    run_id = ops.run_deployment("smoke", {"blueprint": bp, "target": "lab", "started_by": "e2e"})
    run = ops.wait_state(run_id, {"PAUSED"}, 180)
    assert run["name"] == "ops-approve on lab"
    answer = ops.call(
        "POST",
        f"/flow_runs/{run_id}/resume",
        json={"run_input": {"decision": "go", "comment": "approved from the e2e test", "by": "tester"}},
    )
    assert answer.is_success and answer.json()["status"] == "ACCEPT", answer.text
    ops.wait_state(run_id, {"COMPLETED"}, 180)

    folder = run_dir(ops, "ops-approve")
    record = CampaignRecord.model_validate_json((folder / "record.json").read_text())
    approval = record.stages[0].approval
    assert approval is not None
    assert (approval.decision, approval.comment, approval.by) == (
        "go",
        "approved from the e2e test",
        "tester",
    )
    assert record.status == "completed" and all(f.rollback_ok for f in record.stages[0].faults)
    assert (folder / "report" / "report.html").exists()
    artifacts = ops.call(
        "POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}}}
    ).json()
    markdown = [a for a in artifacts if a["type"] == "markdown"]
    assert markdown and "ops-approve" in markdown[0]["data"]
    wanted = {
        "gameday.campaign.started",
        "gameday.stage.started",
        "gameday.stage.ended",
        "gameday.campaign.verdict",
    }
    query = {
        "filter": {"event": {"prefix": ["gameday."]}, "resource": {"id": [f"gameday.run.{record.run_id}"]}}
    }

    def seen() -> bool:
        events = ops.call("POST", "/events/filter", json=query).json()["events"]
        return wanted <= {e["event"] for e in events}

    wait_until(seen, 30, f"events {sorted(wanted)}")  # events are stored asynchronously


def test_out_of_range_intensity_is_refused_by_the_server(ops: Ops) -> None:
    """The server enforces the parameter schema: an intensity outside its range is refused, naming the field."""
    r = ops.call(
        "POST",
        f"/deployments/{ops.deployments['smoke']}/create_flow_run",
        json={"parameters": {"params": {"blueprint": "smoke", "intensity": {"observe_s": 99999}}}},
    )
    assert r.status_code in (409, 422), r.text
    assert "observe_s" in r.text


def wait_injected(ops: Ops, run_id: str, node: str) -> None:
    """Wait until the run has cordoned ``node`` and scaled CoreDNS to 0; its state and the worker's log if not."""

    def injected() -> bool:
        if (kind := ops.state_of(run_id)) in FINAL:
            raise AssertionError(f"the run ended {kind} before both faults were in\n{ops.tail()}")
        return bool(
            core(ops).read_node(node).spec.unschedulable
            and apps(ops).read_namespaced_deployment("coredns", "kube-system").spec.replicas == 0
        )

    try:
        wait_until(injected, 180, "both faults to be injected")
    except AssertionError as e:
        if "timed out" not in str(e):
            raise
        raise AssertionError(f"{e} (run {ops.state_of(run_id)})\n{ops.tail()}") from None


def test_cancel_mid_stage_rolls_back_every_fault(ops: Ops, tmp_path: Path) -> None:
    """Cancelling a run (as the UI does) while a node is cordoned and CoreDNS is at zero restores both objects."""
    node = first_node(ops)
    node_before = core(ops).read_node(node).spec.to_dict()
    dns_before = apps(ops).read_namespaced_deployment("coredns", "kube-system").spec.replicas
    bp = write_blueprint(tmp_path, "ops-cancel", LONG, node)
    run_id = ops.run_deployment("smoke", {"blueprint": bp, "target": "lab"})
    wait_injected(ops, run_id, node)
    ops.cancel(run_id)
    ops.wait_state(run_id, {"CANCELLED"}, 120)
    wait_until(
        lambda: core(ops).read_node(node).spec.to_dict() == node_before, 60, "the node spec to be restored"
    )
    wait_until(
        lambda: apps(ops).read_namespaced_deployment("coredns", "kube-system").spec.replicas == dns_before,
        60,
        "coredns replicas to be restored",
    )
    (ledger,) = (ops.state / "ledger").glob("ops-cancel-*.json")
    states = {e["injection"]["fault_id"]: e["state"] for e in json.loads(ledger.read_text())["entries"]}
    assert states == {"cordon": "rolled-back", "dns": "rolled-back"}


def test_second_run_on_a_target_is_refused_naming_the_holder(ops: Ops, tmp_path: Path) -> None:
    """While one campaign holds the lab, a second run fails fast, and its message names the first."""
    from tasks.cluster import Cluster
    from tasks.lease import lease_holder

    node = first_node(ops)
    first = ops.run_deployment("smoke", {"blueprint": write_blueprint(tmp_path, "ops-first", IDLE, node)})
    cluster = Cluster.from_kubeconfig(ops.lab.kubeconfig, "lab-admin")
    try:
        holder = wait_until(
            lambda: lease_holder(cluster, "gameday")[0], 180, "the first run to take the lease"
        )
    finally:
        cluster.close()
    assert holder.startswith("ops-first-")
    second = ops.run_deployment(
        "coredns-outage", {"blueprint": write_blueprint(tmp_path, "ops-second", IDLE, node)}
    )
    failed = ops.wait_state(second, {"FAILED"}, 120)
    assert holder in failed["state"]["message"], failed["state"]["message"]
    assert ops.state_of(first) == "RUNNING"
    ops.cancel(first)
    ops.wait_state(first, {"CANCELLED"}, 120)


def test_crashed_worker_leaves_faults_that_the_reconcile_deployment_reverts(ops: Ops, tmp_path: Path) -> None:
    """SIGKILL the worker and its flow mid-stage: the faults stay; the reconcile deployment then restores each object."""
    node = first_node(ops)
    node_before = core(ops).read_node(node).spec.to_dict()
    dns_before = apps(ops).read_namespaced_deployment("coredns", "kube-system").spec.replicas
    run_id = ops.run_deployment("smoke", {"blueprint": write_blueprint(tmp_path, "ops-crash", LONG, node)})
    wait_injected(ops, run_id, node)
    wait_until(lambda: ops.flow_run(run_id).get("infrastructure_pid"), 30, "the flow's PID to be recorded")
    ops.crash_worker(run_id)
    assert core(ops).read_node(node).spec.unschedulable, "nobody was left to roll back"
    ops.call("POST", f"/flow_runs/{run_id}/set_state", json={"state": {"type": "CRASHED"}, "force": True})
    ops.start_worker()
    r = ops.call(
        "POST",
        f"/deployments/{ops.deployments['reconcile-hourly']}/create_flow_run",
        json={"parameters": {"params": {"target": "lab", "release_lease": True}}},
    )
    ops.wait_state(str(r.json()["id"]), {"COMPLETED"}, 180)
    # uncordon clears spec.unschedulable; the node lifecycle controller removes its taint a moment later
    wait_until(
        lambda: core(ops).read_node(node).spec.to_dict() == node_before,
        60,
        f"node {node} to be as before the run",
    )
    wait_until(
        lambda: apps(ops).read_namespaced_deployment("coredns", "kube-system").spec.replicas == dns_before,
        30,
        "coredns replicas to be restored",
    )
    (ledger,) = (ops.state / "ledger").glob("ops-crash-*.json")
    assert {e["state"] for e in json.loads(ledger.read_text())["entries"]} == {"rolled-back"}


def png_is_not_blank(png: bytes) -> bool:
    """Whether a PNG's pixels hold more than a handful of distinct byte values (a blank page has ~2)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        if png[pos + 4 : pos + 8] == b"IDAT":
            idat += png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(idat))) > 40


def test_run_form_screenshot_shows_the_parameters(ops: Ops, tmp_path: Path) -> None:
    """Headless Chromium renders the deployment's custom-run page (the typed parameter form) to a non-blank PNG."""
    from tests.conftest import require

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    require(chromium is not None, "needs Debian's chromium: apt-get install -y chromium")
    assert chromium is not None
    png = tmp_path / "run-form.png"
    page = ops.url.removesuffix("/api") + f"/deployments/deployment/{ops.deployments['smoke']}/run"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--virtual-time-budget=15000",
            "--run-all-compositor-stages-before-draw",
            "--window-size=1400,1800",
            f"--screenshot={png}",
            page,
        ],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert png.exists() and png_is_not_blank(png.read_bytes())
    print(f"screenshot: {png}")
