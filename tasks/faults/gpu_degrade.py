"""gpu-degrade: the node agent locks SM clocks, caps power and/or holds device memory through NVML.

Blast radius: one GPU (``gpu_index``) on each chosen node. Undo: the agent captured the previous clock
lock and power limit before changing them and restores exactly those, and frees the memory; a killed
agent's memory is freed by the driver and its restart restores clocks and power from its state file.
A node without an NVIDIA GPU/driver answers with a clear error (NVMLError_LibraryNotFound).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel

from agents.protocol import DegradeParams
from blueprints.faults import GpuDegrade
from tasks.faults.agent_held import AgentHeldFault, AgentHeldUndo
from tasks.faults.base import FaultContext


class GpuDegradeUndo(AgentHeldUndo):
    """the agent restores exactly the clock lock and power limit it captured before changing them, and frees
    the memory; a killed agent's memory is freed by the driver and its restart restores clocks and power from
    its state file
    """


class GpuDegradeFault(AgentHeldFault):
    """Behaviour of the gpu-degrade kind."""

    kind: ClassVar[str] = "gpu-degrade"
    blast_radius: ClassVar[str] = "one GPU (gpu_index) on each chosen node"
    undo: ClassVar[type[BaseModel]] = GpuDegradeUndo
    leased: ClassVar[bool] = True
    what: ClassVar[str] = "GPU degradation (NVML)"

    def node_params(self, spec: GpuDegrade, ctx: FaultContext, node: str) -> DegradeParams:
        """The same request on every node."""
        return DegradeParams(gpu_index=spec.gpu_index, sm_clock_mhz=spec.sm_clock_mhz,
                             power_limit_w=spec.power_limit_w, hold_memory_gib=spec.hold_memory_gib)
