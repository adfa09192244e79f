"""The stock GPU blueprints end to end through `gameday run` on the real control plane with two GPU nodes (lab nodes
with 8 nvidia.com/gpu each and a node agent each, the GPU health monitor acting through the real API server) and the
training job.

The lab runs in real time. gpu-xid-ladder runs with every window of the stock file divided by 5 (``--set``: baseline,
observe, recovery and each "within ... after rollback"), its thresholds untouched; the monitor's reboot of a node
takes 20 s (``gpu_reboot_seconds``) instead of 60. nccl-rail-partition runs with its stock fault windows and
expectations; only the baseline, the REJECT stage's recovery (90 s → 65 s, still past every "within 60s after
rollback") and the final window are trimmed.
The lab's own nodes and the training job need root (pod network, network namespaces): as root they run; otherwise the
module skips locally and fails in CI. Slow (about 6 minutes), so marked ``slow``; CI still runs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from tests.conftest import poll, require
from tests.e2e.gpu_helpers import (
    LIBRARY,
    GpuLab,
    Run,
    agent_faults,
    gameday_run,
    http_text,
    lab_env,
    netns_list,
    netns_rules,
    prometheus_at,
    samples,
    scaled_overrides,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

TRIM = 5.0
"""Every window of gpu-xid-ladder is divided by this (see the module's docstring)."""
FAST: dict[str, Any] = {"node_lease_seconds": 8, "node_monitor_grace_seconds": 12, "node_monitor_period_seconds": 2,
                        "gpu_reboot_seconds": 20}
"""Node leases renewed every 2 s, NotReady 12 s after the last renewal; a monitor reboot keeps a node down 20 s."""
XID = LIBRARY / "gpu-xid-ladder.yaml"
NCCL = LIBRARY / "nccl-rail-partition.yaml"
S13, S94, S79 = "xid-13-graphics-exception", "xid-94-contained-ecc", "xid-79-fell-off-the-bus"
DROP, REJECT = "drop-past-timeout", "reject-fast-failure"
CHECKPOINT_EVERY = 10
"""The lab training job's checkpoint interval (lab/training/job.py JobConfig.checkpoint_every)."""
# The DROP stage keeps its stock 90 s recovery: the job must be training again (the non-host rank is blind
# ~55 s after a DROP) before REJECT lands, or REJECT has no collective to fail.
NCCL_TRIM = ["baseline=5s", "stages[1].recovery=65s", "final_recovery=0s"]


@pytest.fixture(scope="module")
def gpu_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpuLab]:
    """The real control plane: one kwok node, one real lab node, two GPU nodes and the training job (root); a Prefect
    test server."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    from lab.testing import running_control_plane

    require(os.geteuid() == 0, "the lab's own nodes (pod network) and the training job (namespaces) need root")
    state = tmp_path_factory.mktemp("gpu-blueprints")
    with prefect_test_harness(server_startup_timeout=120):
        lab = GpuLab(None, state, lab_env(state, str(PREFECT_API_URL.value())), True)
        try:
            lab.handle = lab.stack.enter_context(
                running_control_plane(state / "lab", nodes=1, real_nodes=1, gpu_nodes=2, training=True, **FAST)
            )
            yield lab
        finally:
            lab.stop()


def _core(lab: GpuLab) -> Any:
    from kubernetes import client

    return client.CoreV1Api(lab.handle.client())


def _restored(lab: GpuLab) -> dict[str, object] | None:
    """None until every node is Ready, schedulable, untainted, without gameday annotations and GPU-healthy."""
    problems: dict[str, object] = {}
    for n in _core(lab).list_node().items:
        conds = {c.type: c.status for c in n.status.conditions or []}
        notes = [k for k in (n.metadata.annotations or {}) if k in ("gameday.dev/reboot-requested",
                                                                    "gameday.dev/cordoned-by")]  # fmt: skip
        if n.spec.unschedulable or n.spec.taints or notes or conds.get("Ready") != "True" \
                or conds.get("GpuHealthy", "True") != "True":  # fmt: skip
            problems[n.metadata.name] = (n.spec.unschedulable, n.spec.taints, notes, conds)
    return None if problems else {"ok": True}


@pytest.fixture(scope="module")
def xid_run(gpu_lab: GpuLab) -> Run:
    """The stock gpu-xid-ladder with its windows divided by 5, run through `gameday run`."""
    return gameday_run(gpu_lab, XID, scaled_overrides(XID, TRIM))


def test_xid_ladder_completes_confirmed_with_a_report(xid_run: Run) -> None:
    """The ladder completes, every XID fault verified and rolled back, the hypothesis confirmed, report.html written."""
    assert xid_run.returncode == 0, xid_run.output[-4000:]
    assert xid_run.record["status"] == "completed", xid_run.record.get("error")
    for stage in (S13, S94, S79):
        fault = xid_run.fault(stage)
        assert fault["verified"] and fault["rollback_ok"], fault
    assert xid_run.results["overall"]["verdict"] == "confirmed", (
        xid_run.results["overall"],
        xid_run.verdicts(),
    )
    assert set(xid_run.verdicts().values()) == {"confirmed"}
    assert (xid_run.run_dir / "report" / "report.html").stat().st_size > 0


def test_each_xid_landed_in_a_kernel_log_and_was_detected(gpu_lab: GpuLab, xid_run: Run) -> None:
    """Each stage's evidence shows its XID line in a GPU node's kernel log; the monitor saw 1 × 13, 3 × 94, 1 × 79."""
    for stage, code in ((S13, 13), (S94, 94), (S79, 79)):
        nodes = xid_run.fault(stage)["evidence"]["nodes"]
        assert len(nodes) == 1 and all(n["landed"] for n in nodes.values()), nodes
        line = next(iter(nodes.values()))["details"]["line"]
        assert "NVRM: Xid (PCI:" in line and f"): {code}," in line, line
    text = http_text(gpu_lab.handle.endpoints["gpu_monitor"])
    detected: dict[str, float] = {}
    for labels, value in samples(text, "gpu_monitor_xid_detected_total"):
        detected[labels["code"]] = detected.get(labels["code"], 0) + value
    assert detected == {"13": 1, "94": 3, "79": 1}


def test_monitor_reaction_follows_the_catalogue(gpu_lab: GpuLab, xid_run: Run) -> None:
    """13 and 94 restart the app without a cordon; 79 cordons, drains and reboots, and the trainer moves away."""
    actions = {(labels["code"], labels["action"]): value
               for labels, value in samples(http_text(gpu_lab.handle.endpoints["gpu_monitor"]),
                                            "gpu_monitor_actions_total")}  # fmt: skip
    assert actions == {("13", "restart-app"): 1, ("94", "restart-app"): 1, ("79", "reboot"): 1}
    for stage in (S13, S94):
        assert max(xid_run.stage_values("nodes_cordoned", stage, ("fault", "recovery"))) == 0
    assert max(xid_run.stage_values("nodes_cordoned", S79)) >= 1
    before_drain = xid_run.stage_values("pods_evicted", S94, ("recovery",))[-1]
    assert xid_run.stage_values("pods_evicted", S79)[-1] > before_drain
    node79 = next(iter(xid_run.fault(S79)["evidence"]["nodes"]))
    injected = datetime.fromisoformat(xid_run.fault(S79)["injected_at"])
    before = prometheus_at(gpu_lab, f'gpu_monitor_gpu_pods_running{{node="{node79}"}}', injected)
    assert before, f"no gpu_monitor_gpu_pods_running sample for {node79} when XID 79 landed"
    pods = _core(gpu_lab).list_namespaced_pod("gpu-training").items
    running = [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]
    assert len(running) == 2, [(p.metadata.name, p.spec.node_name, p.status.phase) for p in pods]
    assert all(p.spec.node_name != node79 for p in running), [p.spec.node_name for p in running]
    moved = [p for p in running if p.metadata.creation_timestamp >= injected.replace(microsecond=0)]
    # The lab's scheduler (fewest pods, ties by name) may have put both trainers on one node before stage 79, and
    # the fault picks a GPU node at random: then there was nothing to reschedule, and no new pod is expected.
    assert len(moved) >= before[0][1], (
        before,
        [(p.spec.node_name, p.metadata.creation_timestamp) for p in running],
    )
    print(
        f"\nXID 79 on {node79}: {before[0][1]:g} trainer pod(s) there at injection, {len(moved)} recreated elsewhere"
    )


def test_xid_ladder_rollback_is_complete(gpu_lab: GpuLab, xid_run: Run) -> None:
    """After the run no agent holds a fault and every node is Ready, uncordoned, untainted and GPU-healthy again."""
    assert agent_faults(gpu_lab) == {"gpu-node-0": [], "gpu-node-1": []}
    poll(lambda: _restored(gpu_lab), 60, "every node restored", interval=0.5)
    assert xid_run.record["rollback_problems"] == []


@pytest.fixture(scope="module")
def nccl_run(gpu_lab: GpuLab) -> Run:
    """The stock nccl-rail-partition (baseline/recovery/final trimmed) through `gameday run` on the training lab."""
    require(gpu_lab.training, "needs root for the training job's network namespaces: run as root")
    return gameday_run(gpu_lab, NCCL, NCCL_TRIM)


@pytest.mark.usefixtures("require_root")
def test_nccl_partition_completes_confirmed_with_a_report(nccl_run: Run) -> None:
    """Both partition stages complete, verified and rolled back, and the hypothesis is confirmed."""
    assert nccl_run.returncode == 0, nccl_run.output[-4000:]
    assert nccl_run.record["status"] == "completed", nccl_run.record.get("error")
    for stage, action in ((DROP, "DROP"), (REJECT, "REJECT")):
        fault = nccl_run.fault(stage)
        assert fault["verified"] and fault["rollback_ok"], fault
        (node,) = fault["evidence"]["nodes"].values()
        assert node["details"]["action"] == action and "GD-" in node["summary"], node
    assert nccl_run.results["overall"]["verdict"] == "confirmed", (
        nccl_run.results["overall"],
        nccl_run.verdicts(),
    )
    assert (nccl_run.run_dir / "report" / "report.html").stat().st_size > 0


@pytest.mark.usefixtures("require_root")
def test_drop_times_out_and_restarts_from_the_checkpoint(nccl_run: Run) -> None:
    """The DROP hangs the all-reduce for the 10 s gloo timeout, the job restarts and loses ≤ one checkpoint interval."""
    hang = nccl_run.stage_values("collective_hang_seconds", DROP, ("fault", "recovery"))
    assert max(hang) >= 9, hang
    restarts = nccl_run.stage_values("restarts", DROP, ("fault", "recovery"))
    assert restarts[-1] >= restarts[0] + 1, restarts
    # The hang strikes the all-reduce of a random step: right after a checkpoint (1 time in CHECKPOINT_EVERY) the
    # restart redoes nothing. Resuming from step 0 instead would redo every step done so far, more than an interval.
    assert nccl_run.stage_values("last_checkpoint_step", DROP, ("fault",))[0] >= CHECKPOINT_EVERY
    lost = nccl_run.stage_values("last_restart_lost_steps", DROP, ("recovery",))
    assert 0 <= lost[-1] < CHECKPOINT_EVERY, lost
    assert max(nccl_run.stage_values("step_rate", DROP, ("recovery",))[-5:]) >= 1


@pytest.mark.usefixtures("require_root")
def test_reject_fails_fast(nccl_run: Run) -> None:
    """Once the REJECT lands the collective fails in well under the timeout, then the job recovers."""
    # The reset is noticed within milliseconds, often before the fault window's first scrape: count from the end
    # of the previous stage's recovery window, just before the REJECT was injected.
    before = nccl_run.stage_values("collective_failures", DROP, ("recovery",))[-1]
    failures = nccl_run.stage_values("collective_failures", REJECT, ("fault",))
    assert failures[-1] > before, (before, failures)
    hang = nccl_run.stage_values("collective_hang_seconds", REJECT, ("fault",))
    assert hang[-1] <= 2, hang
    assert max(nccl_run.stage_values("step_rate", REJECT, ("recovery",))[-5:]) >= 1


@pytest.mark.usefixtures("require_root")
def test_after_the_partitions_no_chain_is_left_and_the_job_trains(gpu_lab: GpuLab, nccl_run: Run) -> None:
    """No gameday chain or table is left in any rank namespace, no agent holds a fault, and the step count grows."""
    assert nccl_run.record["status"] == "completed"
    for namespace in gpu_lab.handle.endpoints["training"]["ranks"]:
        rules = netns_rules(namespace)
        assert "GD-" not in rules and "gameday_" not in rules, f"{namespace}:\n{rules}"
    assert agent_faults(gpu_lab) == {"gpu-node-0": [], "gpu-node-1": []}
    metrics = gpu_lab.handle.endpoints["training"]["metrics"]

    def step() -> float:
        return samples(http_text(metrics), "training_step")[0][1]

    first = step()
    poll(lambda: step() > first + 5, 60, "the training step to grow", interval=0.5)


@pytest.mark.usefixtures("require_root")
def test_stopping_the_lab_removes_its_namespaces(gpu_lab: GpuLab) -> None:
    """`lab down` deletes every network namespace of the training job (runs last: it stops the module's lab)."""
    require(gpu_lab.training, "needs root for the training job's network namespaces: run as root")
    ranks = list(gpu_lab.handle.endpoints["training"]["ranks"])
    prefix = ranks[0].rsplit("-", 1)[0] + "-"
    assert all(r in netns_list() for r in ranks)
    gpu_lab.stop()
    assert [n for n in netns_list() if n.startswith(prefix)] == []
