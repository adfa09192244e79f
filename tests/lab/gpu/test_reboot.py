"""Tests for lab.gpu.monitor with the lab runtime: XID 79 → cordon, drain, reschedule, reboot, uncordon.

A real API server, the runtime's kubelets, scheduler and Deployment controller, and the monitor process
with ``--runtime-url`` (reboots kill and revive the node's kubelet). Time scale 10; reboots take 30 lab s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.apiserver.testing import running_apiserver
from lab.runtime import slots
from lab.runtime.config import RuntimeConfig
from lab.runtime.identities import CONTROL_PLANE_USERS, LAB_NAMESPACES, service_accounts
from lab.runtime.testing import RunningRuntime, running_runtime
from tests.lab.gpu.conftest import Cluster, MonitorProcess, append_xid, start_monitor, stop_process, wait_for

MANIFEST = Path(__file__).resolve().parents[3] / "lab" / "gpu" / "manifests" / "gpu-training.yaml"
SCALE = 10.0


@dataclass
class RuntimeLab:
    """API server + runtime + monitor."""

    cluster: Cluster
    runtime: RunningRuntime
    monitor: MonitorProcess


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[RuntimeLab]:
    """Three nodes (two GPU nodes), the trainer Deployment applied, and the monitor watching both GPU nodes."""
    names = RuntimeConfig(api_url="", users_file="", nodes=3, gpu_nodes=2).node_names()
    extra = {k: list(v) for k, v in CONTROL_PLANE_USERS.items()}
    with running_apiserver(
        tmp_path, nodes=names, service_accounts=service_accounts(), extra_users=extra
    ) as api:
        c = Cluster(api)
        for ns in LAB_NAMESPACES:
            if ns not in ("default", "kube-system", "kube-node-lease"):
                c.call("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
        slot = slots.claim(tmp_path)
        try:
            with running_runtime(tmp_path / "runtime", api.url, tmp_path / "apiserver-users.json", nodes=3,
                                 gpu_nodes=2, time_scale=SCALE, slot=slot) as rt:  # fmt: skip
                gpu = [n for n in names if n.startswith("gpu-")]
                kmsg = {n: tmp_path / f"{n}.kmsg" for n in gpu}
                m = start_monitor(
                    tmp_path, api, kmsg, SCALE, ["--runtime-url", rt.url, "--reboot-seconds", "30"]
                )
                try:
                    yield RuntimeLab(c, rt, m)
                finally:
                    stop_process(m.proc)
        finally:
            slots.release(tmp_path)


def _apply(c: Cluster) -> None:
    for doc in yaml.safe_load_all(MANIFEST.read_text()):
        path = (
            "/api/v1/namespaces"
            if doc["kind"] == "Namespace"
            else "/apis/apps/v1/namespaces/gpu-training/deployments"
        )
        c.call("POST", path, doc)


def _running(c: Cluster) -> dict[str, str]:
    out = c.call("GET", "/api/v1/namespaces/gpu-training/pods")
    return {p["metadata"]["name"]: p["spec"].get("nodeName", "") for p in out["items"]
            if (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")}  # fmt: skip


def _running_on(c: Cluster, node: str | None) -> dict[str, str] | None:
    """Both trainer pods Running (on ``node`` when given), as {pod: node}; None otherwise."""
    r = _running(c)
    return r if len(r) == 2 and (node is None or set(r.values()) == {node}) else None


def test_xid_79_drains_reschedules_reboots_and_uncordons(lab: RuntimeLab) -> None:
    """The trainer's pods leave the failed node for the other GPU node; after the reboot the node is back."""
    c, m = lab.cluster, lab.monitor
    _apply(c)
    before = wait_for(lambda: _running_on(c, None), 60, "two trainer pods Running")
    victim = min(before.values())
    other = next(n for n in m.kmsg if n != victim)
    t0 = time.time()
    append_xid(m.kmsg[victim], 79)
    wait_for(lambda: c.node(victim)["spec"].get("unschedulable"), 15, "the cordon")
    after = wait_for(lambda: _running_on(c, other), 60, "both trainer pods Running on the other GPU node")
    rescheduled = time.time()
    assert not set(after) & {k for k, v in before.items() if v == victim}, (
        "pods on the failed node were replaced"
    )
    cond: Any = wait_for(lambda: (x := c.condition(victim, "GpuHealthy")) and x["status"] == "True" and x, 30,
                         "the reboot to finish")  # fmt: skip
    assert cond["reason"] == "Xid79"
    # finish_reboot marks the GPUs healthy first, then uncordons: await the second write, do not race it
    wait_for(lambda: not c.node(victim)["spec"].get("unschedulable"), 15, "the uncordon after the reboot")
    recovery = m.value(f'gpu_monitor_last_recovery_seconds{{node="{victim}"}}')
    detection = m.value("gpu_monitor_detection_seconds_sum")
    drain = m.value('gpu_monitor_remediation_seconds_sum{action="reboot"}')
    print(f"\nlab seconds (scale {SCALE:g}): detection {detection:.2f}, drain {drain:.2f}, "
          f"reschedule {(rescheduled - t0) * SCALE:.1f}, back and uncordoned {recovery:.1f}")  # fmt: skip
    assert recovery >= 30
