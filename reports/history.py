"""The history store: every run's expectations and verdicts (SQLite), keyed by campaign and topology fingerprint.

It answers what the report and ``suggest`` need to know about the past: each expectation's earlier verdicts,
whether a run is *low-information* (the expectation was confirmed on the last N runs on the same topology) and
whether there is *drift* (the topology changed since the expectation was last confirmed). The caller chooses the
database path (flows/ takes it from settings); ``DEFAULT_FILENAME`` is the suggested name.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from pydantic import BaseModel, ConfigDict

from blueprints.record import CampaignRecord
from reports.verdicts import ExpectationResult, Overall, VerdictKind

DEFAULT_FILENAME = "history.sqlite"
LOW_INFORMATION_RUNS = 3
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, campaign TEXT NOT NULL, fingerprint TEXT NOT NULL,
  started_at TEXT NOT NULL, verdict TEXT NOT NULL, dry_run INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS expectations (run_id TEXT NOT NULL, campaign TEXT NOT NULL, expectation TEXT NOT NULL,
  fingerprint TEXT NOT NULL, started_at TEXT NOT NULL, verdict TEXT NOT NULL, measured REAL, threshold REAL,
  refuted_stages TEXT NOT NULL DEFAULT '', PRIMARY KEY (run_id, expectation));
CREATE INDEX IF NOT EXISTS expectations_by_campaign ON expectations (campaign, expectation, started_at);
"""


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunEntry(_Out):
    """One past run of a campaign."""

    run_id: str
    campaign: str
    fingerprint: str
    started_at: datetime
    verdict: VerdictKind


class HistoryEntry(_Out):
    """One past verdict of one expectation."""

    run_id: str
    fingerprint: str
    started_at: datetime
    verdict: VerdictKind
    measured: float | None = None
    threshold: float | None = None
    refuted_stages: list[str] = []


class Flags(_Out):
    """What the history says about this run of an expectation."""

    low_information: bool = False
    drift: bool = False
    reason: str = ""


class HistoryStore:
    """SQLite-backed history of runs and expectation verdicts."""

    def __init__(self, path: Path) -> None:
        """Open (creating if needed) the database at ``path``."""
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def record_run(self, record: CampaignRecord, results: list[ExpectationResult], overall: Overall) -> None:
        """Store (or replace: building a report twice is harmless) one run's verdicts."""
        fp, at = record.target.fingerprint, record.started_at.isoformat()
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?)",
                             (record.run_id, record.campaign, fp, at, overall.verdict, int(record.dry_run)))
            self._db.execute("DELETE FROM expectations WHERE run_id = ?", (record.run_id,))
            for r in results:
                decided = [s for s in r.stages if s.measured is not None]
                worst = decided[0] if decided else None
                refuted = ",".join(s.stage or s.window for s in r.stages if s.verdict == "refuted")
                self._db.execute("INSERT INTO expectations VALUES (?,?,?,?,?,?,?,?,?)",
                                 (record.run_id, record.campaign, r.text, fp, at, r.verdict,
                                  worst.measured if worst else None, worst.threshold if worst else None, refuted))

    def runs(self, campaign: str) -> list[RunEntry]:
        """Every stored run of ``campaign``, newest first."""
        rows = self._db.execute("SELECT run_id, campaign, fingerprint, started_at, verdict FROM runs WHERE campaign = ?"
                                " ORDER BY started_at DESC", (campaign,)).fetchall()
        return [RunEntry(run_id=a, campaign=b, fingerprint=c, started_at=datetime.fromisoformat(d), verdict=e)
                for a, b, c, d, e in rows]

    def expectation_history(self, campaign: str, expectation: str, before: datetime | None = None,
                            exclude_run: str | None = None) -> list[HistoryEntry]:
        """Past verdicts of one expectation (by its one-line text), newest first."""
        rows = self._db.execute(
            "SELECT run_id, fingerprint, started_at, verdict, measured, threshold, refuted_stages FROM expectations "
            "WHERE campaign = ? AND expectation = ? ORDER BY started_at DESC", (campaign, expectation)).fetchall()
        out = [HistoryEntry(run_id=a, fingerprint=b, started_at=datetime.fromisoformat(c), verdict=d, measured=e,
                            threshold=f, refuted_stages=[x for x in g.split(",") if x]) for a, b, c, d, e, f, g in rows]
        return [h for h in out if h.run_id != exclude_run and (before is None or h.started_at < before)]


def flags(history: list[HistoryEntry], fingerprint: str, n: int = LOW_INFORMATION_RUNS) -> Flags:
    """Low-information (confirmed on the last ``n`` runs on this topology) and drift (topology changed since the
    last confirmation), from an expectation's earlier history (newest first)."""
    same = [h for h in history if h.fingerprint == fingerprint][:n]
    low = len(same) >= n and all(h.verdict == "confirmed" for h in same)
    last_ok = next((h for h in history if h.verdict == "confirmed"), None)
    drift = last_ok is not None and last_ok.fingerprint != fingerprint
    why = []
    if low:
        why.append(f"confirmed on the last {n} runs on this topology: this run adds little information")
    if drift and last_ok is not None:
        why.append(f"topology changed since the last confirmation ({last_ok.run_id}, "
                   f"fingerprint {last_ok.fingerprint or '?'} → {fingerprint or '?'})")
    return Flags(low_information=low, drift=drift, reason="; ".join(why))
