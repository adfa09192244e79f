"""gpu-xid from the runner: plan, inject, verify, renew, rollback against real agents with fake GPUs."""

from __future__ import annotations

import json
from datetime import timedelta

from blueprints.common import NodeSelector
from blueprints.faults import GpuXid
from tasks.faults import REGISTRY
from tasks.faults.base import FaultContext
from tasks.faults.gpu_xid import GpuXidFault
from tests.tasks.agents.conftest import AddNode


def test_registered() -> None:
    """The registry maps gpu-xid to this behaviour."""
    assert isinstance(REGISTRY["gpu-xid"], GpuXidFault)


def test_fake_xid_lands_on_every_node_and_rolls_back(gpu_node: AddNode, runner_ctx: FaultContext) -> None:
    """Both nodes get the line (PCI from the node annotation on one, from NVML on the other); rollback is idempotent."""
    a = gpu_node("gpu-1", {"gameday.dev/gpu-pci-1": "0000:cb:00"})
    b = gpu_node("gpu-2")
    spec = GpuXid(code=79, gpu_index=1, selector=NodeSelector(label_selector={"nvidia.com/gpu.present": "true"},
                                                               mode="all"), lease=timedelta(seconds=20))
    fault = GpuXidFault()
    inj = fault.plan(spec, runner_ctx, run_id="run-t", stage="s1", fault_id="xid")
    assert inj.targets == ["node/gpu-1", "node/gpu-2", "gpu/gpu-1/1", "gpu/gpu-2/1"] and not a.kmsg_path.exists()
    inj = fault.inject(inj, runner_ctx)
    ev = fault.verify(inj, runner_ctx)
    assert ev.landed, ev
    assert "PCI:0000:cb:00): 79," in a.kmsg_path.read_text()
    assert "PCI:0000:2a:00): 79," in b.kmsg_path.read_text()
    fault.renew(inj, runner_ctx)
    assert json.loads(a.nvml_state.read_text())["devices"][1]["last_xid"] == 79
    fault.rollback(inj, runner_ctx)
    fault.rollback(inj, runner_ctx)
    assert json.loads(a.state_file.read_text())["faults"] == []
    assert json.loads(a.nvml_state.read_text())["devices"][1]["last_xid"] == 0
    assert not fault.verify(inj, runner_ctx).landed
