"""The agent's state file: every fault it holds, written (atomically, fsynced) before a fault is applied.

On start the agent reverts everything listed here (an agent killed mid-fault reverts what it held when
it comes back). ``StoredFault.undo`` holds what each backend needs to revert from the record alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.errors import BackendFailed
from agents.files import write_atomic
from agents.protocol import FaultParams

UndoValue = str | int | float | bool | None


class StoredFault(BaseModel):
    """One held fault as persisted."""

    model_config = ConfigDict(extra="forbid")

    fault_id: str
    run_id: str
    params: FaultParams
    ttl_seconds: float
    injected_at: float
    expires_at: float
    state: Literal["applying", "active"] = "applying"
    undo: dict[str, UndoValue] = Field(default_factory=dict)


class StateDoc(BaseModel):
    """The whole state file."""

    model_config = ConfigDict(extra="forbid")

    node: str
    faults: list[StoredFault] = Field(default_factory=list)


class StateFile:
    """Load and save the state document."""

    def __init__(self, path: Path, node: str) -> None:
        self.path = path
        self.node = node

    def load(self) -> list[StoredFault]:
        """The faults in the file; an absent file is empty; a corrupt one is an error (never ignored)."""
        try:
            raw = self.path.read_text()
        except FileNotFoundError:
            return []
        if not raw.strip():
            return []
        try:
            return StateDoc.model_validate(json.loads(raw)).faults
        except (ValueError, ValidationError) as exc:
            raise BackendFailed(f"state file {self.path} is unreadable: {exc}") from exc

    def save(self, faults: list[StoredFault]) -> None:
        """Write atomically and durably (temp file, fsync, rename, fsync the directory)."""
        write_atomic(self.path, StateDoc(node=self.node, faults=faults).model_dump_json(indent=1))
