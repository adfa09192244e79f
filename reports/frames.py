"""Loading a run directory (record + metric frames) and slicing samples by time window.

Frames are long-form (observable, series, timestamp, value); rows whose observable is ``presence:<metric>``
count the series of one metric an observable reads (``Run.presence``). Non-finite values are dropped at load time
(Prometheus answers NaN for 0/0; it carries no measurement). Windows are half-open: ``start <= t < end``.
All times are int64 nanoseconds since the epoch (UTC) inside this package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import ValidationError

from blueprints.campaign import Campaign, Observable
from blueprints.promql import PRESENCE_PREFIX
from blueprints.record import CampaignRecord, TimelineEvent, Window
from reports.errors import ReportError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
FRAME_COLUMNS = ("observable", "series", "timestamp", "value")


def ns(at: datetime) -> int:
    """A timezone-aware datetime as int64 nanoseconds since the epoch."""
    return int(pd.Timestamp(at).value)


@dataclass(frozen=True)
class Series:
    """One labelled series of one observable: sorted times (ns) and values."""

    name: str
    t: I64
    v: F64

    def between(self, start: int, end: int) -> tuple[I64, F64]:
        """The samples with ``start <= t < end``."""
        lo, hi = np.searchsorted(self.t, [start, end], side="left")
        return self.t[lo:hi], self.v[lo:hi]


@dataclass
class Run:
    """A loaded run: its record, its campaign and its series per observable."""

    path: Path
    record: CampaignRecord
    campaign: Campaign | None
    series: dict[str, list[Series]] = field(default_factory=dict)
    presence: dict[str, Series] = field(default_factory=dict)
    """Per metric an observable reads: how many series it had at each frame instant (rows ``presence:<m>``;
    empty for runs recorded before presence was fetched)."""

    def windows(self, kind: str, stage: str | None = None) -> list[Window]:
        """The record's windows of one kind (and stage, when given)."""
        return [w for w in self.record.windows if w.kind == kind and (stage is None or w.stage == stage)]

    def baseline(self) -> Window | None:
        """The baseline window, if the run got that far."""
        found = self.windows("baseline")
        return found[0] if found else None

    def anchor(self) -> int:
        """Time zero for charts (ns): the first injection, else the first fault window, else the start."""
        injected = [f.injected_at for s in self.record.stages for f in s.faults if f.injected_at is not None]
        if injected:
            return ns(min(injected))
        faults = self.windows("fault")
        return ns(min(w.start for w in faults)) if faults else ns(self.record.started_at)

    def pooled(self, observable: str, start: int, end: int) -> tuple[I64, F64]:
        """All series of ``observable`` in ``[start, end)``, concatenated (times, values)."""
        parts = [s.between(start, end) for s in self.series.get(observable, [])]
        if not parts:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def observables(self) -> list[Observable]:
        """The campaign's observables; when the blueprint cannot be read, one per observable in the frames."""
        if self.campaign is not None:
            return list(self.campaign.observables)
        return [Observable.model_construct(name=n, query="(unknown: blueprint unreadable)", unit="", description="",
                                           slo=None) for n in sorted(self.series)]

    def events(self) -> list[TimelineEvent]:
        """The timeline events, plus an 'approval' event for each stage approval the events do not show."""
        shown = {e.stage for e in self.record.events if e.kind == "approval"}
        extra = [TimelineEvent(at=s.approval.at, kind="approval", stage=s.name,
                               message=f"{s.approval.decision} by {s.approval.by or '?'} {s.approval.comment}".strip())
                 for s in self.record.stages if s.approval is not None and s.name not in shown]
        return sorted([*self.record.events, *extra], key=lambda e: e.at)

    def label(self) -> str:
        """A short name for this run in legends."""
        return f"{self.record.run_id} ({self.record.started_at:%Y-%m-%d %H:%M})"


def read_frames(path: Path) -> pd.DataFrame:
    """Read a long-form frames file (Parquet or CSV) and check its columns."""
    try:
        if path.suffix == ".csv":
            df = pd.read_csv(path, dtype={"observable": str, "series": str}, keep_default_na=False)
            df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
        else:
            df = pd.read_parquet(path)
    except (OSError, ValueError) as e:
        raise ReportError(f"cannot read frames {path}: {e}") from e
    missing = [c for c in FRAME_COLUMNS if c not in df.columns]
    if missing:
        raise ReportError(f"frames {path} lack columns {missing}; expected {list(FRAME_COLUMNS)}")
    return df


def split_series(df: pd.DataFrame) -> dict[str, list[Series]]:
    """Long-form frames → sorted series per observable (non-finite values dropped)."""
    value = df["value"].to_numpy(dtype=np.float64)
    df = df.loc[np.isfinite(value)]
    ts = pd.to_datetime(df["timestamp"], utc=True)
    t_all = ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    v_all = df["value"].to_numpy(dtype=np.float64)
    obs = df["observable"].astype(str).to_numpy()
    ser = df["series"].fillna("").astype(str).to_numpy()
    order = np.lexsort((t_all, ser, obs))
    t_all, v_all, obs, ser = t_all[order], v_all[order], obs[order], ser[order]
    out: dict[str, list[Series]] = {}
    if len(order) == 0:
        return out
    keys = np.char.add(np.char.add(obs.astype(str), "\x00"), ser.astype(str))
    cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(keys)], strict=True):
        out.setdefault(str(obs[lo]), []).append(Series(str(ser[lo]), t_all[lo:hi], v_all[lo:hi]))
    return out


def load_run(run_dir: Path) -> Run:
    """Load ``record.json`` and its frames file from a run directory."""
    rec_path = run_dir / "record.json" if run_dir.is_dir() else run_dir
    try:
        record = CampaignRecord.model_validate_json(rec_path.read_text())
    except OSError as e:
        raise ReportError(f"cannot read run record {rec_path}: {e.strerror}") from e
    except ValidationError as e:
        raise ReportError(f"{rec_path} is not a valid run record: {e}") from e
    try:
        campaign: Campaign | None = Campaign.model_validate(record.blueprint)
    except ValidationError:
        campaign = None
    series: dict[str, list[Series]] = {}
    if record.frames_file:
        series = split_series(read_frames(rec_path.parent / record.frames_file))
    presence = {name.removeprefix(PRESENCE_PREFIX): parts[0] for name, parts in series.items()
                if name.startswith(PRESENCE_PREFIX) and parts}
    series = {name: parts for name, parts in series.items() if not name.startswith(PRESENCE_PREFIX)}
    return Run(rec_path.parent, record, campaign, series, presence)
