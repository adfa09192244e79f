"""gpu-xid: the node agent writes driver-format XID lines to the host kernel log (and DCGM field 230).

Blast radius: the chosen GPU nodes' kernel logs (log-based detectors such as NVSentinel or
node-problem-detector react; the device plugin and DCGM do not, unless DCGM injection is on), one GPU's
DCGM field 230 when ``dcgmi`` exists. Undo: kernel log lines cannot be unwritten; rollback stops further
lines and DCGM re-injection and sets the field to 0. The PCI address comes from the node annotation
``gameday.dev/gpu-pci-<index>`` when present, else the agent reads it from NVML.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel

from agents.protocol import XidParams
from blueprints.faults import GpuXid
from tasks.agent_client import PCI_ANNOTATION
from tasks.faults.agent_held import AgentHeldFault, AgentHeldUndo, agents_of
from tasks.faults.base import FaultContext


class GpuXidUndo(AgentHeldUndo):
    """kernel log lines cannot be unwritten; rollback stops further lines and DCGM re-injection and sets the
    field to 0
    """


class GpuXidFault(AgentHeldFault):
    """Behaviour of the gpu-xid kind."""

    kind: ClassVar[str] = "gpu-xid"
    blast_radius: ClassVar[str] = (
        "the chosen GPU nodes' kernel logs (log-based detectors such as NVSentinel or node-problem-detector "
        "react; the device plugin and DCGM do not, unless DCGM injection is on), one GPU's DCGM field 230 "
        "when dcgmi exists"
    )
    undo: ClassVar[type[BaseModel]] = GpuXidUndo
    leased: ClassVar[bool] = True
    what: ClassVar[str] = "XID kernel-log lines"

    def node_params(self, spec: GpuXid, ctx: FaultContext, node: str) -> XidParams:
        """The XID request for one node, with the GPU's PCI address when the node advertises it."""
        pci = agents_of(ctx).node_annotations(node).get(PCI_ANNOTATION.format(index=spec.gpu_index))
        return XidParams(code=spec.code, gpu_index=spec.gpu_index, count=spec.count,
                         interval_seconds=spec.interval.total_seconds(), dcgm=spec.dcgm, pci_address=pci or None)
