"""Turning the typed :class:`~flows.params.Intensity` form into ``path=value`` blueprint overrides."""

from __future__ import annotations

from typing import Any

import yaml

from flows.loading import resolve_path
from flows.params import Intensity

_WINDOWS = {"observe_s": "observe", "recovery_s": "recovery", "approval_timeout_s": "approval_timeout"}
_FAULT_FIELDS = {
    "storm_rate": ("control-plane-overload", "rate"),
    "storm_concurrency": ("control-plane-overload", "concurrency"),
    "xid_count": ("gpu-xid", "count"),
}


def intensity_overrides(blueprint: str, intensity: Intensity) -> list[str]:
    """The overrides that apply ``intensity`` to the blueprint (every stage; every fault of the named kind)."""
    values = intensity.model_dump(exclude_none=True)
    if not values:
        return []
    data: Any = yaml.safe_load(resolve_path(blueprint).read_text())
    stages = data.get("stages", []) if isinstance(data, dict) else []
    out: list[str] = []
    if "baseline_s" in values:
        out.append(f"baseline={values['baseline_s']:g}s")
    for i, stage in enumerate(stages):
        for key, name in _WINDOWS.items():
            if key in values:
                out.append(f"stages[{i}].{name}={values[key]:g}s")
        faults = stage.get("faults", []) if isinstance(stage, dict) else []
        for j, fault in enumerate(faults):
            for key, (kind, field) in _FAULT_FIELDS.items():
                if key in values and isinstance(fault, dict) and fault.get("kind") == kind:
                    out.append(f"stages[{i}].faults[{j}].{field}={values[key]}")
    return out
