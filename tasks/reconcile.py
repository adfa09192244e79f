"""Reconcile: roll back every ledger entry a run left open, from local ledgers and the cluster's ConfigMaps.

Entries are merged by (run, stage, fault); an entry is open if either copy says it is not rolled back.
Open entries are rolled back through the fault registry in reverse order of recording (newest first),
each marked rolled-back or rollback-failed in both ledgers. Idempotent; with nothing open it does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from tasks.faults.base import FaultContext
from tasks.ledger import OPEN_STATES, Ledger, LedgerEntry, read_cluster_entries, read_local_ledgers


class ReconcileResult(BaseModel):
    """What reconcile did with one open entry."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    stage: str
    fault_id: str
    kind: str
    previous_state: str
    sources: list[str]
    outcome: str
    error: str | None = None


def open_entries(cluster: Any, state_dir: Path, namespace: str, run_id: str | None = None,
                 exclude_run: str | None = None) -> list[tuple[LedgerEntry, list[str]]]:
    """Every open entry (with where it was found), newest first; only ``run_id``'s, never ``exclude_run``'s."""
    merged: dict[tuple[str, str], tuple[LedgerEntry, list[str], bool]] = {}
    for ledger in read_local_ledgers(state_dir):
        for e in ledger.entries:
            merged[(e.injection.run_id, e.key)] = (e, ["local"], e.state in OPEN_STATES)
    if cluster is not None:
        for entries in read_cluster_entries(cluster, namespace).values():
            for e in entries:
                k = (e.injection.run_id, e.key)
                if k in merged:
                    local, sources, is_open = merged[k]
                    merged[k] = (local if local.state in OPEN_STATES else e, [*sources, "cluster"],
                                 is_open or e.state in OPEN_STATES)
                else:
                    merged[k] = (e, ["cluster"], e.state in OPEN_STATES)
    found = [(e, src) for e, src, is_open in merged.values()
             if is_open and (run_id is None or e.injection.run_id == run_id) and e.injection.run_id != exclude_run]
    found.sort(key=lambda item: (item[0].recorded_at, item[0].seq), reverse=True)
    return found


def reconcile(cluster: Any, state_dir: Path, namespace: str = "gameday",
              make_context: Callable[[str], FaultContext] | None = None,
              log: Callable[[str], None] = print, run_id: str | None = None,
              exclude_run: str | None = None) -> list[ReconcileResult]:
    """Roll back everything left open (only ``run_id``'s, never ``exclude_run``'s); one result per entry."""
    from tasks.faults import behaviour

    results: list[ReconcileResult] = []
    ledgers: dict[str, Ledger] = {}
    for entry, sources in open_entries(cluster, Path(state_dir), namespace, run_id, exclude_run):
        inj = entry.injection
        ledger = ledgers.setdefault(inj.run_id, Ledger(Path(state_dir), inj.run_id, cluster, namespace))
        ctx = make_context(inj.run_id) if make_context else FaultContext(cluster=cluster, run_id=inj.run_id, log=log)
        error: str | None = None
        try:
            behaviour(inj.kind).rollback(inj, ctx)
            outcome = "rolled-back"
        except Exception as e:  # noqa: BLE001 - keep reconciling the rest; the entry stays open for a retry
            outcome, error = "rollback-failed", f"{type(e).__name__}: {e}"
        log(f"reconcile {inj.run_id} {inj.stage}/{inj.fault_id} ({inj.kind}): {outcome}" + (f": {error}" if error else ""))
        try:
            ledger.update(inj, outcome, error)  # type: ignore[arg-type]
        except Exception as e:  # noqa: BLE001 - marking failed (e.g. API down): the rollback itself is what counts
            error = (error or "") + f"; could not mark the ledger: {e}"
        results.append(ReconcileResult(run_id=inj.run_id, stage=inj.stage, fault_id=inj.fault_id, kind=inj.kind,
                                       previous_state=entry.state, sources=sources, outcome=outcome, error=error))
    for ledger in ledgers.values():
        try:
            ledger.close()
        except Exception as e:  # noqa: BLE001 - the ConfigMap stays; the next reconcile removes it
            log(f"reconcile: could not remove the ledger ConfigMap of {ledger.run_id}: {e}")
    return results
