"""The ledger: every injection is written down before it is applied, so a dead run can always be undone.

Local: one JSON file per run, ``<state>/ledger/<run_id>.json``, rewritten atomically and fsync'd on
every change. In the cluster (for faults with ``cluster_scoped_ledger``): a ConfigMap
``gameday-ledger-<run_id>`` in the ledger namespace, one key per fault (``<stage>.<fault_id>``) holding
the entry JSON, labelled ``app.kubernetes.io/managed-by=gameday``. States: planned → applied →
rolled-back | rollback-failed. :func:`reconcile` (in ``tasks.reconcile``) rolls back whatever is left.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.errors import Conflict, NotFound
from tasks.faults.base import Injection
from tasks.faults.selection import MANAGED_BY, k8s_name
from tasks.files import write_atomic

State = Literal["planned", "applied", "rolled-back", "rollback-failed"]
OPEN_STATES: tuple[str, ...] = ("planned", "applied", "rollback-failed")
RUN_LABEL = "gameday.dev/run-id"
__all__ = ["Ledger", "LedgerEntry"]


class LedgerEntry(BaseModel):
    """One recorded injection and where it stands."""

    model_config = ConfigDict(extra="forbid")

    seq: int
    recorded_at: datetime
    updated_at: datetime
    state: State = "planned"
    error: str | None = None
    injection: Injection

    @property
    def key(self) -> str:
        """The entry's key, also its ConfigMap data key: ``<stage>.<fault_id>``."""
        return entry_key(self.injection)


class LedgerFile(BaseModel):
    """A run's local ledger file."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    entries: list[LedgerEntry] = Field(default_factory=list)


def entry_key(injection: Injection) -> str:
    """``<stage>.<fault_id>`` made safe for a ConfigMap key."""
    raw = f"{injection.stage}.{injection.fault_id}"
    return "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in raw)


def configmap_name(run_id: str) -> str:
    """The in-cluster ledger ConfigMap of a run."""
    return k8s_name("gameday-ledger", run_id, limit=253)


def _now() -> datetime:
    return datetime.now(UTC)


class Ledger:
    """The ledger of one run: local file plus (for cluster faults) the run's ConfigMap."""

    def __init__(self, state_dir: Path, run_id: str, cluster: Any = None, namespace: str = "gameday") -> None:
        self.run_id = run_id
        self.path = Path(state_dir) / "ledger" / f"{run_id}.json"
        self.cluster = cluster
        self.namespace = namespace
        self._file = LedgerFile.model_validate_json(self.path.read_text()) if self.path.exists() \
            else LedgerFile(run_id=run_id)

    @property
    def entries(self) -> list[LedgerEntry]:
        """All entries in recording order."""
        return list(self._file.entries)

    def open_entries(self) -> list[LedgerEntry]:
        """Entries not rolled back yet, in recording order."""
        return [e for e in self._file.entries if e.state in OPEN_STATES]

    def _find(self, injection: Injection) -> LedgerEntry | None:
        key = entry_key(injection)
        return next((e for e in self._file.entries if e.key == key), None)

    def record(self, injection: Injection) -> LedgerEntry:
        """Write a planned injection down (locally, then in the cluster) before it is applied."""
        entry = self._find(injection)
        if entry is None:
            entry = LedgerEntry(seq=len(self._file.entries), recorded_at=_now(), updated_at=_now(),
                                injection=injection)
            self._file.entries.append(entry)
        else:
            entry.injection, entry.updated_at = injection, _now()
        self._save(entry)
        return entry

    def update(self, injection: Injection, state: State, error: str | None = None) -> LedgerEntry:
        """Move an entry to ``state`` (its injection refreshed: inject may have added undo state)."""
        entry = self._find(injection)
        if entry is None:
            entry = self.record(injection)
        entry.injection, entry.state, entry.error, entry.updated_at = injection, state, error, _now()
        self._save(entry)
        return entry

    def _save(self, entry: LedgerEntry) -> None:
        write_atomic(self.path, self._file.model_dump_json(indent=1))
        if self.cluster is not None and entry.injection.cluster_scoped_ledger:
            write_cluster_entry(self.cluster, self.namespace, self.run_id, entry)

    def close(self) -> bool:
        """Delete the run's ConfigMap once every entry is rolled back; True when it was removed."""
        if self.cluster is None or self.open_entries():
            return False
        return bool(self.cluster.delete_configmap(self.namespace, configmap_name(self.run_id)))


def write_cluster_entry(cluster: Any, namespace: str, run_id: str, entry: LedgerEntry) -> None:
    """Put one entry into the run's ledger ConfigMap (creating namespace and ConfigMap as needed)."""
    name = configmap_name(run_id)
    data = {entry.key: entry.model_dump_json()}
    try:
        cluster.patch_configmap_data(namespace, name, data)
        return
    except NotFound:
        pass
    cluster.ensure_namespace(namespace, dict(MANAGED_BY))
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": {**MANAGED_BY, RUN_LABEL: k8s_name(run_id)}},
            "data": data}
    try:
        cluster.create_configmap(namespace, body)
    except Conflict:
        cluster.patch_configmap_data(namespace, name, data)


def read_cluster_entries(cluster: Any, namespace: str) -> dict[str, list[LedgerEntry]]:
    """Every ledger ConfigMap's entries in the namespace, by ConfigMap name (none if the namespace is absent)."""
    try:
        maps = cluster.list_configmaps(namespace, MANAGED_BY)
    except NotFound:
        return {}
    out: dict[str, list[LedgerEntry]] = {}
    for cm in maps:
        if not cm.metadata.name.startswith("gameday-ledger-"):
            continue
        out[cm.metadata.name] = [LedgerEntry.model_validate_json(v) for v in (cm.data or {}).values()]
    return out


def read_local_ledgers(state_dir: Path) -> list[Ledger]:
    """Every run's local ledger under ``<state_dir>/ledger`` (without a cluster attached)."""
    folder = Path(state_dir) / "ledger"
    if not folder.is_dir():
        return []
    return [Ledger(state_dir, p.stem) for p in sorted(folder.glob("*.json")) if not p.name.startswith(".")]
