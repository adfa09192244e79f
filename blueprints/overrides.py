"""What a run changes in a blueprint before it is validated: ``--set`` assignments, the intensity form, the target
and the stages to keep.

:class:`Overrides` is applied to the YAML's data once, before validation (``blueprints.load(path, overrides=...)``),
so a bad override is reported like any other blueprint problem, with its path.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

_PART = re.compile(r"([A-Za-z_][\w-]*)|\[(\d+)\]")
_WINDOWS = {"observe_s": "observe", "recovery_s": "recovery", "approval_timeout_s": "approval_timeout"}
_FAULT_FIELDS = {
    "storm_rate": ("control-plane-overload", "rate"),
    "storm_concurrency": ("control-plane-overload", "concurrency"),
    "xid_count": ("gpu-xid", "count"),
}


class Intensity(BaseModel):
    """Intensity overrides with their allowed ranges (applied to every stage / every fault of the kind)."""

    model_config = ConfigDict(extra="forbid")

    baseline_s: float | None = Field(
        title="Baseline (s)", default=None, ge=0, le=3600, description="baseline window, seconds"
    )
    observe_s: float | None = Field(
        title="Observe (s)", default=None, ge=1, le=3600, description="each stage's fault window, seconds"
    )
    recovery_s: float | None = Field(
        title="Recovery (s)", default=None, ge=0, le=3600, description="each stage's recovery, seconds"
    )
    approval_timeout_s: float | None = Field(
        title="Approval timeout (s)",
        default=None,
        ge=10,
        le=86_400,
        description="how long a paused stage waits for a decision",
    )
    storm_rate: float | None = Field(
        title="Storm rate (LIST/s)",
        default=None,
        gt=0,
        le=100_000,
        description="control-plane-overload: total LIST/s",
    )
    storm_concurrency: int | None = Field(
        title="Storm concurrency",
        default=None,
        ge=1,
        le=4096,
        description="control-plane-overload: concurrent clients",
    )
    xid_count: int | None = Field(
        title="XID count", default=None, ge=1, le=100, description="gpu-xid: errors per injection"
    )

    def apply(self, data: dict[str, Any]) -> None:
        """Set the windows on every stage and the fault fields on every fault of their kind, in place."""
        values = self.model_dump(exclude_none=True)
        if "baseline_s" in values:
            data["baseline"] = f"{values['baseline_s']:g}s"
        for stage in data.get("stages") or []:
            if not isinstance(stage, dict):
                continue
            for key, name in _WINDOWS.items():
                if key in values:
                    stage[name] = f"{values[key]:g}s"
            for fault in stage.get("faults") or []:
                for key, (kind, name) in _FAULT_FIELDS.items():
                    if key in values and isinstance(fault, dict) and fault.get("kind") == kind:
                        fault[name] = values[key]


class Assignment(BaseModel):
    """One ``path=value`` edit (``stages[0].faults[1].rate=100``; the value read as YAML)."""

    model_config = ConfigDict(frozen=True)

    path: tuple[str | int, ...]
    value: Any
    text: str

    @classmethod
    def parse(cls, text: str) -> Assignment:
        """Read ``path=value`` (ValueError naming what cannot be read)."""
        if "=" not in text:
            raise ValueError(f"override {text!r} must look like path=value")
        raw_path, raw = text.split("=", 1)
        path = raw_path.strip()
        parts: list[str | int] = []
        pos = 0
        for m in _PART.finditer(path):
            if m.start() != pos and path[pos : m.start()] != ".":
                raise ValueError(f"cannot read override path {path!r}")
            parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
            pos = m.end()
        if pos != len(path) or not parts:
            raise ValueError(f"cannot read override path {path!r}")
        return cls(path=tuple(parts), value=yaml.safe_load(raw) if raw.strip() else "", text=path)

    def apply(self, data: dict[str, Any]) -> None:
        """Set the value in place, creating mappings (and lists before an index) on the way; ValueError when an
        index does not exist or a key is not inside a mapping."""
        node: Any = data
        for key, nxt in zip(self.path, self.path[1:], strict=False):
            node = self._step(node, key, [] if isinstance(nxt, int) else {})
        last = self.path[-1]
        if isinstance(last, int):
            self._check_index(node, last)
        elif not isinstance(node, dict):
            raise ValueError(f"override {self.text!r}: {last!r} is not inside a mapping")
        node[last] = self.value

    def _step(self, node: Any, key: str | int, empty: Any) -> Any:
        if isinstance(key, int):
            self._check_index(node, key)
            return node[key]
        if not isinstance(node, dict):
            raise ValueError(f"override {self.text!r}: {key!r} is not inside a mapping")
        return node.setdefault(key, empty)

    def _check_index(self, node: Any, index: int) -> None:
        if not isinstance(node, list) or index >= len(node):
            raise ValueError(f"override {self.text!r}: index [{index}] does not exist")


def _stage_of(expectation: Any) -> str | None:
    """The stage an expectation is scoped to ('... in stage NAME'), if any."""
    if isinstance(expectation, dict):
        return expectation.get("stage")
    m = re.search(r"in\s+stage\s+(\S+)\s*$", str(expectation))
    return m.group(1) if m else None


class Overrides(BaseModel):
    """Edits a run makes to a blueprint before validation: intensity first, then each ``--set``, the target's
    cluster, and the stages to keep (expectations scoped to dropped stages go with them)."""

    model_config = ConfigDict(extra="forbid")

    assignments: list[str] = Field(default_factory=list, description="path=value, e.g. stages[0].observe=10s")
    intensity: Intensity = Field(default_factory=Intensity)
    target: str | None = None
    stages: list[str] = Field(default_factory=list, description="keep only these stages (default: all)")

    def __bool__(self) -> bool:
        return bool(self.assignments or self.target or self.stages or self.intensity.model_dump(exclude_none=True))

    def apply(self, data: dict[str, Any]) -> list[str]:
        """Edit ``data`` in place; return every problem (``--set X: why``, ``--stage: why``)."""
        problems: list[str] = []
        self.intensity.apply(data)
        for text in self.assignments:
            try:
                Assignment.parse(text).apply(data)
            except ValueError as e:
                problems.append(f"--set {text}: {e}")
        if self.target:
            target = data.setdefault("target", {})
            if isinstance(target, dict):
                target["cluster"] = self.target
        if self.stages:
            problems += self._keep_stages(data)
        return problems

    def _keep_stages(self, data: dict[str, Any]) -> list[str]:
        stages = [s for s in data.get("stages") or [] if isinstance(s, dict)]
        known = [s.get("name") for s in stages]
        unknown = [s for s in self.stages if s not in known]
        data["stages"] = [s for s in stages if s.get("name") in self.stages]
        hypothesis = data.get("hypothesis")
        if isinstance(hypothesis, dict) and isinstance(hypothesis.get("expectations"), list):
            kept = [e for e in hypothesis["expectations"] if _stage_of(e) in (None, *self.stages)]
            hypothesis["expectations"] = kept or hypothesis["expectations"]
        return [f"--stage: no stage named {', '.join(map(repr, unknown))} (stages: {known})"] if unknown else []
