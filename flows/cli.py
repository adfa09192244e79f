"""The ``gameday`` command line: the typer app and its commands, registered in ``--help`` order.

This module builds the typer ``app`` (the ``gameday`` console script is ``flows.cli:app``) and registers
the commands, in the order ``--help`` lists them, from the modules that own them: ``cli_blueprint``
(validate, list-faults, import-ctk, export-ctk), ``cli_run`` (plan, run, reconcile, stop, search-limit),
``janitor`` (the dead-man switch's loop), ``cli_report`` (report, suggest) and ``cli_lab`` (lab). ``cli_common`` holds the consoles and the
user-error boundary: every :class:`GamedayError` prints a clear message and exits with its ``exit_code``.
"""

from __future__ import annotations

import typer

from flows.cli_blueprint import export_ctk, import_ctk, list_faults, validate
from flows.cli_common import OrchestrationUnavailable, err, out, user_errors
from flows.cli_lab import LAB_CONTEXT, lab
from flows.cli_report import report, suggest
from flows.cli_run import plan, reconcile, run, search_limit, stop
from flows.janitor import janitor

__all__ = ["OrchestrationUnavailable", "app", "err", "main", "out", "user_errors"]

app = typer.Typer(
    help="gameday: staged, guarded, always-rolled-back game days.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(validate)
app.command()(plan)
app.command()(run)
app.command()(reconcile)
app.command()(stop)
app.command()(janitor)
app.command("search-limit")(search_limit)
app.command("list-faults")(list_faults)
app.command("import-ctk")(import_ctk)
app.command("export-ctk")(export_ctk)
app.command()(report)
app.command()(suggest)
app.command(context_settings=LAB_CONTEXT)(lab)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
