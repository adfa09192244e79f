"""``gameday`` commands over past runs: ``report`` (build a run's report) and ``suggest`` (what to run next).

Registered on the app in ``flows/cli.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli_common import out, user_errors


@user_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="a run folder (holds record.json)")],
    compare: Annotated[list[Path] | None, typer.Option(help="runs of the same campaign to overlay")] = None,
) -> None:
    """Build the HTML/JUnit/Markdown report of a run."""
    import reports
    from tasks.settings import Settings

    paths = reports.build(
        run_dir, compare=compare or [], history=reports.HistoryStore(Settings().history_path)
    )
    out.print(
        f"verdict: [bold]{paths.verdict}[/bold]\nreport: {paths.html}\njunit: {paths.junit}\n"
        f"summary: {paths.summary}",
        highlight=False,
    )


@user_errors
def suggest(limit: Annotated[int, typer.Option(help="how many suggestions")] = 5) -> None:
    """Rank stock blueprints by what history says is most worth running next."""
    from flows.catalogue import suggestions

    for line in suggestions(limit):
        out.print(line, markup=False, highlight=False)
