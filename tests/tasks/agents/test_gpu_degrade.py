"""gpu-degrade from the runner: exact restore with fake GPUs, and a clear failure on a node without a GPU."""

from __future__ import annotations

import json

import pytest

from blueprints.common import NodeSelector
from blueprints.faults import GpuDegrade
from tasks.errors import InjectionFailed
from tasks.faults.base import FaultContext
from tasks.faults.gpu_degrade import GpuDegradeFault
from tests.tasks.agents.conftest import AddNode


def _gpu0(path: object) -> dict[str, object]:
    return dict(json.loads(path.read_text())["devices"][0])  # type: ignore[attr-defined]


def test_fake_degrade_lands_and_restores(gpu_node: AddNode, runner_ctx: FaultContext) -> None:
    """Clocks, power and memory change on the chosen node and come back exactly after rollback."""
    agent = gpu_node("gpu-1")
    before = _gpu0(agent.nvml_state)
    spec = GpuDegrade(sm_clock_mhz=400, power_limit_w=250, hold_memory_gib=8, selector=NodeSelector(names=["gpu-1"]))
    fault = GpuDegradeFault()
    inj = fault.inject(fault.plan(spec, runner_ctx, run_id="run-t", stage="s", fault_id="deg"), runner_ctx)
    ev = fault.verify(inj, runner_ctx)
    assert ev.landed and "clock ok, power ok, memory ok" in ev.details["nodes"]["gpu-1"]["summary"]
    assert _gpu0(agent.nvml_state)["power_limit_w"] == 250.0
    fault.rollback(inj, runner_ctx)
    assert _gpu0(agent.nvml_state) == before


def test_node_without_gpu_fails_clearly(gpu_node: AddNode, runner_ctx: FaultContext) -> None:
    """An agent with no GPU/driver refuses with the NVML reason, and nothing is held."""
    agent = gpu_node("gpu-1", nvml="real")
    spec = GpuDegrade(sm_clock_mhz=400, selector=NodeSelector(names=["gpu-1"]))
    fault = GpuDegradeFault()
    inj = fault.plan(spec, runner_ctx, run_id="run-t", stage="s", fault_id="deg")
    with pytest.raises(InjectionFailed, match="no NVIDIA GPU/driver on this node"):
        fault.inject(inj, runner_ctx)
    assert not agent.state_file.exists() or json.loads(agent.state_file.read_text())["faults"] == []
