"""reports.markdown: the summary names the verdict, every expectation, problems and the report path."""

from __future__ import annotations

from pathlib import Path

from reports.frames import load_run
from reports.markdown import summary_markdown
from reports.results import analyse


def test_summary_has_verdict_expectations_and_problems(synthetic: dict[str, Path]) -> None:
    """The aborted run's summary shows its verdict, the guardrail that fired, a rollback problem, the abort and
    every expectation."""
    res = analyse(load_run(synthetic["aborted"]))
    md = summary_markdown(res, Path("/runs/x/report.html"))
    assert md.startswith(f"# {res.campaign}: ❌ refuted")
    assert "**Why:** guardrail 'dns-floor' fired at " in md and "with value 0.41" in md
    assert "Rollback problem" in md and "corefile-servfail aborted" in md
    assert "`/runs/x/report.html`" in md
    for e in res.expectations:
        assert e.result.text.replace("|", "\\|") in md


def test_summary_table_rows_per_expectation(synthetic: dict[str, Path]) -> None:
    """The Markdown table has one row per expectation, marked refuted where refuted."""
    res = analyse(load_run(synthetic["refuted"]))
    rows = [line for line in summary_markdown(res).splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == len(res.expectations)
    assert sum("❌ refuted" in r for r in rows) == sum(e.result.verdict == "refuted" for e in res.expectations)
