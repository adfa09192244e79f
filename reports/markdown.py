"""The Markdown summary (``summary.md``): verdict, expectations and where the full report is.

flows/ publishes it as a Prefect artifact; this module only writes text.
"""

from __future__ import annotations

from pathlib import Path

from reports.html import fmt
from reports.results import RunResults

_ICON = {"confirmed": "✅", "refuted": "❌", "inconclusive": "⚠️"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_markdown(res: RunResults, report_path: Path | None = None) -> str:
    """A short Markdown summary of one run for humans (CI comments, Prefect artifacts)."""
    out = [f"# {res.campaign}: {_ICON[res.overall.verdict]} {res.overall.verdict}", "",
           f"**Why:** {res.overall.reason}", "",
           (f"Run `{res.run_id}` ({res.status}), started {res.started_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"topology `{res.fingerprint or '?'}`.")]
    for p in res.rollback_problems:
        out.append(f"\n> **🛑 Rollback problem:** {p}")
    for stage, why in res.aborted.items():
        out.append(f"\n> **Stage {stage} aborted:** {why or 'no reason given'}")
    for w in res.warnings:
        out.append(f"\n> **Could not refute:** {w}")
    if res.no_effect:
        out.append(f"\n> **No measurable effect** on {', '.join(res.no_effect)} (fault windows indistinguishable "
                   "from the baseline).")
    if res.low_information:
        out.append("\n> **Low-information run:** every expectation was already confirmed on recent runs on this "
                   "topology, or the fault had no measurable effect.")
    if res.drift:
        out.append("\n> **Topology drift** since an expectation was last confirmed.")
    out += ["", "| # | expectation | measured / threshold | verdict | why |", "|---|---|---|---|---|"]
    for e in res.expectations:
        r = e.result
        measured = "<br>".join(f"{s.stage or s.window}: {fmt(s.measured)} / {fmt(s.threshold)}" for s in r.stages)
        out.append(f"| {r.index + 1} | `{_cell(r.text)}` | {measured} | {_ICON[r.verdict]} {r.verdict} | "
                   f"{_cell(r.reason)} |")
    if report_path is not None:
        out += ["", f"Full report: `{report_path}`"]
    return "\n".join(out) + "\n"
