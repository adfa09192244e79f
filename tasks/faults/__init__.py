"""The one registry from fault kind to behaviour.

Every kind in ``blueprints.faults.FAULT_KINDS`` has exactly one behaviour here (a test checks both ways).
Agent-held kinds (gpu-xid, gpu-degrade, nccl-partition) come from the agents' modules when present.
"""

from __future__ import annotations

import importlib
from typing import Any

from tasks.errors import UnknownFaultKind
from tasks.faults.base import FaultBehaviour
from tasks.faults.chaostoolkit import ChaosToolkitBehaviour
from tasks.faults.control_plane import ControlPlaneOverloadFault
from tasks.faults.coredns import CorednsOutageFault
from tasks.faults.node_cordon import NodeCordonFault
from tasks.faults.noop import NoopFault
from tasks.faults.pod_kill import PodKillFault

# kind -> (module, class) of behaviours written by the agents work; registered once their module exists.
AGENT_KINDS: dict[str, tuple[str, str]] = {
    "gpu-xid": ("tasks.faults.gpu_xid", "GpuXidFault"),
    "gpu-degrade": ("tasks.faults.gpu_degrade", "GpuDegradeFault"),
    "nccl-partition": ("tasks.faults.nccl_partition", "NcclPartitionFault"),
}


def _agent_behaviours() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for kind, (module, _cls) in AGENT_KINDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            continue
        for value in vars(mod).values():
            if isinstance(value, type) and getattr(value, "kind", None) == kind and hasattr(value, "rollback"):
                found[kind] = value()
                break
    return found


REGISTRY: dict[str, FaultBehaviour[Any]] = {
    b.kind: b for b in (
        ControlPlaneOverloadFault(), CorednsOutageFault(), PodKillFault(), NodeCordonFault(),
        ChaosToolkitBehaviour(), NoopFault(),
    )
}
REGISTRY.update(_agent_behaviours())


def behaviour(kind: str) -> FaultBehaviour[Any]:
    """The behaviour registered for ``kind``."""
    try:
        return REGISTRY[kind]
    except KeyError:
        raise UnknownFaultKind(f"no behaviour registered for fault kind {kind!r}; known: {sorted(REGISTRY)}") \
            from None


__all__ = ["AGENT_KINDS", "REGISTRY", "UnknownFaultKind", "behaviour"]
