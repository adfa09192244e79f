"""The one registry from fault kind to behaviour.

Every kind in ``blueprints.faults.FAULT_KINDS`` has exactly one behaviour here (a test checks both ways).
Agent-held kinds (gpu-xid, gpu-degrade, nccl-partition) are implemented in their own modules on top of
``agent_client.py``; the rest are cluster or local faults.
"""

from __future__ import annotations

from typing import Any

from tasks.errors import UnknownFaultKind
from tasks.faults.base import FaultBehaviour
from tasks.faults.chaostoolkit import ChaosToolkitBehaviour
from tasks.faults.control_plane import ControlPlaneOverloadFault
from tasks.faults.coredns import CorednsOutageFault
from tasks.faults.gpu_degrade import GpuDegradeFault
from tasks.faults.gpu_xid import GpuXidFault
from tasks.faults.nccl_partition import NcclPartitionFault
from tasks.faults.node_cordon import NodeCordonFault
from tasks.faults.noop import NoopFault
from tasks.faults.pod_kill import PodKillFault

_BEHAVIOURS: tuple[FaultBehaviour[Any], ...] = (
    ControlPlaneOverloadFault(), CorednsOutageFault(), PodKillFault(), NodeCordonFault(), GpuXidFault(),
    GpuDegradeFault(), NcclPartitionFault(), ChaosToolkitBehaviour(), NoopFault(),
)
REGISTRY: dict[str, FaultBehaviour[Any]] = {b.kind: b for b in _BEHAVIOURS}
"""Fault kind → its behaviour."""

if len(REGISTRY) != len(_BEHAVIOURS):  # two behaviours claiming one kind is a programming error
    raise UnknownFaultKind(f"duplicate fault kinds among {[b.kind for b in _BEHAVIOURS]}")


def behaviour(kind: str) -> FaultBehaviour[Any]:
    """The behaviour registered for ``kind``."""
    try:
        return REGISTRY[kind]
    except KeyError:
        raise UnknownFaultKind(f"no behaviour registered for fault kind {kind!r}; known: {sorted(REGISTRY)}") \
            from None


def leased(kind: str) -> bool:
    """Whether faults of ``kind`` are held under a lease the runner renews (unknown kinds are not)."""
    found = REGISTRY.get(kind)
    return found is not None and found.leased


__all__ = ["REGISTRY", "behaviour", "leased"]
