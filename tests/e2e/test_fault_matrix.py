"""Every fault kind that lands on the lab, on every exit path: it lands, and the cluster is restored object by object.

On the real control plane (``e2e_real``: etcd, kube-apiserver, the controllers and scheduler, kwok's node, the lab's
real nodes running the real CoreDNS and the inference workload, a GPU node with its agent).

Paths: (a) success, (b) guardrail abort (an HTTP guardrail against a local endpoint the test flips to 500),
(c) an exception in the step after inject (a second fault whose Chaos Toolkit action raises), all with the
in-process CampaignRunner; (d) `gameday run` SIGKILLed mid-stage, then `gameday reconcile --release-lease`
(every fault but pod-kill, which leaves nothing in place to reconcile once it has landed).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import E2E, poll
from tests.e2e.matrix_helpers import (
    CPU_NODE,
    FAULTS,
    assert_restored,
    blueprint,
    raw_state,
    run_inprocess,
    snapshot,
    storm_data,
    switch,
)

FAULT_IDS = sorted(FAULTS)


@pytest.fixture(scope="module")
def e2e(e2e_real: E2E) -> E2E:
    """This module's lab: the real control plane."""
    return e2e_real

# a pod kill is over the moment it lands: nothing is left in place for reconcile to undo
KILLABLE = [f for f in FAULT_IDS if f != "pod-kill"]


@pytest.fixture(scope="module", autouse=True)
def _storm_data(e2e: E2E) -> Iterator[None]:
    """1,000 ConfigMaps for the client storm to LIST in this module (namespace removed after it)."""
    with storm_data(e2e):
        yield


def _landed(out: Any) -> None:
    f = out.faults["f"]
    assert f.injected_at is not None, "fault f was never injected"
    assert f.verified, f"fault f did not land: {f.evidence}"
    assert f.rollback_ok is True, f"rollback failed: {f.rollback_error}"


@pytest.mark.parametrize("fault", FAULT_IDS)
def test_success_lands_and_restores(e2e: E2E, tmp_path: Path, fault: str) -> None:
    """A clean run lands the fault (verified evidence) and leaves every touched object as it was."""
    before = snapshot(e2e)
    out = run_inprocess(e2e, tmp_path, blueprint(f"mx-{fault}-ok", fault), f"mx-{fault}-ok")
    assert out.status == "completed", out.reason
    _landed(out)
    assert_restored(e2e, before)


@pytest.mark.parametrize("fault", FAULT_IDS)
def test_guardrail_abort_restores(e2e: E2E, tmp_path: Path, fault: str) -> None:
    """An HTTP guardrail going bad after the fault landed aborts the stage and everything is restored."""
    before = snapshot(e2e)
    with switch() as sw:
        text = blueprint(f"mx-{fault}-guard", fault, observe="60s", guard_url=sw.url)
        out = run_inprocess(e2e, tmp_path, text, f"mx-{fault}-guard", on_verified=sw.fail)
    assert out.status == "aborted", out.reason
    assert "switch" in out.reason
    _landed(out)
    assert_restored(e2e, before)


@pytest.mark.parametrize("fault", FAULT_IDS)
def test_exception_after_inject_restores(e2e: E2E, tmp_path: Path, fault: str) -> None:
    """When the next fault's inject raises, the stage fails and the first fault is still rolled back."""
    before = snapshot(e2e)
    out = run_inprocess(e2e, tmp_path, blueprint(f"mx-{fault}-exc", fault, raiser=True), f"mx-{fault}-exc")
    assert out.status == "failed", out.reason
    assert "on purpose" in out.reason or "explode" in out.reason, out.reason
    _landed(out)
    assert_restored(e2e, before)


def _in_place(e2e: E2E, fault: str, before: dict[str, Any]) -> bool:
    """Whether the killable run's fault is visibly in place on the lab."""
    now = raw_state(e2e)
    if fault == "coredns-scale-to-zero":
        return bool(now["deployments"]["kube-system/coredns"] == 0)
    if fault == "coredns-corefile":
        return bool(now["coredns_configmap"] != before["coredns_configmap"])
    if fault == "coredns-block":
        return bool(now["network_policies"] != before["network_policies"])
    if fault == "node-cordon":
        return bool(now["nodes"][CPU_NODE]["unschedulable"])
    if fault == "control-plane-overload":
        return bool(now["flowschemas"] != before["flowschemas"])
    return any(now["agent_faults"].values())


@pytest.mark.parametrize("fault", KILLABLE)
def test_sigkill_then_reconcile_restores(e2e: E2E, tmp_path: Path, fault: str) -> None:
    """SIGKILL `gameday run` while the fault is in place; `gameday reconcile --release-lease` restores every object."""
    before = snapshot(e2e)
    bp = tmp_path / "killable.yaml"
    bp.write_text(blueprint(f"mx-{fault}-kill", fault, observe="300s"))
    proc = e2e.popen("run", str(bp), "--target", "lab", "--yes")
    try:
        poll(lambda: proc.poll() is not None or _in_place(e2e, fault, before), 180, f"{fault} to be in place")
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert _in_place(e2e, fault, before), "the killed run cannot have rolled back"
    result = e2e.gameday("reconcile", "--target", "lab", "--release-lease", timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert FAULTS[fault]["kind"] in result.stdout
    assert_restored(e2e, before)
