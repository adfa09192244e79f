"""gameday reports: a run record + metric frames → statistics → verdicts → one offline HTML report and friends.

Pure: never imports tasks/, kubernetes, prometheus_api_client, prefect or lab (only blueprints/).

Python API (the ``gameday report`` CLI in flows/ calls this)::

    from reports import build, HistoryStore
    paths = build(run_dir, out_dir=None, compare=[other_run_dir, ...], history=HistoryStore(path))

``run_dir`` holds ``record.json`` (blueprints.record.CampaignRecord) and its frames file (``record.frames_file``,
long form: observable, series, timestamp, value). ``out_dir`` defaults to ``run_dir / "report"``. It receives:

- ``report.html``: self-contained (plotly.js inlined, opens offline): verdict, timeline, expectations with history,
  per-observable charts (aligned on first injection; ``compare`` runs overlaid) and statistics, fault evidence,
  plan and blueprint;
- ``record.json`` (the run record), ``frames.parquet`` or ``frames.csv`` (``frames_format``), ``results.json``
  (reports.results.RunResults: verdicts, flags, statistics), ``junit.xml`` (one test case per expectation) and
  ``summary.md`` (the Markdown summary flows/ publishes as a Prefect artifact).

With ``history``, the run's earlier history is read first (for flags), then this run's verdicts are stored
(replacing any earlier build of the same run_id; dry runs are not stored). Raises
``reports.errors.ReportError`` for unreadable input or compared runs of another campaign.

Other entry points: ``reports.suggest.rank(blueprints, history, fingerprint, now)`` for ``gameday suggest``;
``reports.history.HistoryStore(path)`` (``DEFAULT_FILENAME``); ``reports.results.analyse(run)`` for results only.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from reports.errors import ReportError
from reports.figures import DEFAULT_MAX_POINTS, ecdf_figure, observable_figure, timeline_figure
from reports.frames import FRAME_COLUMNS, Run, load_run, read_frames
from reports.history import HistoryStore
from reports.html import render
from reports.junit import junit_xml
from reports.markdown import summary_markdown
from reports.results import RunResults, analyse
from reports.stats import DEFAULT_RECOVER_SAMPLES

__all__ = ["HistoryStore", "ReportError", "ReportPaths", "RunResults", "build"]


@dataclass(frozen=True)
class ReportPaths:
    """Where build() wrote each output, and the results it concluded."""

    out_dir: Path
    html: Path
    record: Path
    frames: Path
    results: Path
    junit: Path
    summary: Path
    verdict: str


def _write_frames(run: Run, dest_dir: Path, fmt: Literal["parquet", "csv"]) -> Path:
    dest = dest_dir / f"frames.{fmt}"
    src = run.path / run.record.frames_file if run.record.frames_file else None
    if src is not None and src.suffix == dest.suffix and src.exists():
        if not (dest.exists() and src.samefile(dest)):
            shutil.copyfile(src, dest)
        return dest
    df = read_frames(src) if src is not None and src.exists() else pd.DataFrame(columns=list(FRAME_COLUMNS))
    if fmt == "csv":
        df.to_csv(dest, index=False)
    else:
        df.to_parquet(dest, index=False)
    return dest


def build(run_dir: Path, out_dir: Path | None = None, compare: list[Path] | None = None,
          history: HistoryStore | None = None, *, frames_format: Literal["parquet", "csv"] = "parquet",
          max_points: int = DEFAULT_MAX_POINTS, recover_samples: int = DEFAULT_RECOVER_SAMPLES) -> ReportPaths:
    """Build the report of the run in ``run_dir`` (see the module docstring for every output)."""
    run = load_run(Path(run_dir))
    others = [load_run(Path(p)) for p in compare or []]
    for o in others:
        if o.record.campaign != run.record.campaign:
            raise ReportError(f"cannot compare run {o.record.run_id} of campaign {o.record.campaign!r} with "
                              f"{run.record.campaign!r}: --compare takes runs of the same campaign")
    out = Path(out_dir) if out_dir is not None else run.path / "report"
    out.mkdir(parents=True, exist_ok=True)
    res = analyse(run, history, recover_samples)
    compared = [analyse(o, None, recover_samples) for o in others]
    runs = [run, *others]
    observables = run.observables()
    figs = [(observable_figure(o, runs, max_points), ecdf_figure(o, runs)) for o in observables]
    paths = ReportPaths(out_dir=out, html=out / "report.html", record=out / "record.json",
                        frames=_write_frames(run, out, frames_format), results=out / "results.json",
                        junit=out / "junit.xml", summary=out / "summary.md", verdict=res.overall.verdict)
    paths.html.write_text(render(run, res, timeline_figure(run), figs, compared), encoding="utf-8")
    record = run.record.model_copy(update={"frames_file": paths.frames.name})
    paths.record.write_text(record.model_dump_json(indent=1), encoding="utf-8")
    paths.results.write_text(res.model_dump_json(indent=1), encoding="utf-8")
    paths.junit.write_text(junit_xml(res), encoding="utf-8")
    paths.summary.write_text(summary_markdown(res, paths.html), encoding="utf-8")
    if history is not None and not run.record.dry_run:
        history.record_run(run.record, [e.result for e in res.expectations], res.overall)
    return paths
