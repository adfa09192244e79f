"""The ``gameday`` command line: validate, plan, run, reconcile, list-faults, CTK import/export, report, suggest, lab.

User errors (every :class:`GamedayError`) print a clear message and exit with the error's ``exit_code``;
never a traceback. Prefect is imported only by the commands that run flows, after
:func:`flows.env.prefect_defaults` has set a project-local Prefect home.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from blueprints.errors import BlueprintError, GamedayError
from flows.env import prefect_defaults, prefect_server_configured, quiet_console, user_name

app = typer.Typer(
    help="gameday: staged, guarded, always-rolled-back game days.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


class OrchestrationUnavailable(GamedayError):
    """No Prefect API could be reached or started; nothing was injected."""

    exit_code = 6


def user_errors(fn: F) -> F:
    """Turn GamedayErrors into a message on stderr and the error's exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BlueprintError as e:
            err.print(f"[red]{e.source or 'blueprint'}[/red]: {len(e.problems)} problem(s)", highlight=False)
            for p in e.problems:
                err.print(f"  {p}", markup=False, highlight=False)
            raise typer.Exit(e.exit_code) from None
        except GamedayError as e:
            err.print(f"[red]error[/red] ({type(e).__name__}): ", end="", highlight=False)
            err.print(str(e), markup=False, highlight=False)
            raise typer.Exit(e.exit_code) from None

    return wrapper  # type: ignore[return-value]


@app.command()
@user_errors
def validate(files: Annotated[list[Path], typer.Argument(help="blueprint YAML files")]) -> None:
    """Check blueprints; print every problem with its path (exit 2 if any)."""
    from blueprints import load

    failed = 0
    for f in files:
        try:
            c = load(f)
            out.print(f"[green]ok[/green] {f}: {c.name} ({len(c.stages)} stage(s))", highlight=False)
        except BlueprintError as e:
            failed += 1
            err.print(f"[red]invalid[/red] {f}: {len(e.problems)} problem(s)", highlight=False)
            for p in e.problems:
                err.print(f"  {p}", markup=False, highlight=False)
    if failed:
        raise typer.Exit(2)


def _print_plan(file: str, target: str | None, stages: list[str] | None, overrides: list[str] | None) -> None:
    from flows.loading import load_campaign
    from flows.planview import render_plan
    from tasks.runner import CampaignRunner
    from tasks.runner_connect import connect
    from tasks.runner_record import Recorder
    from tasks.settings import Settings

    campaign, _ = load_campaign(file, target=target, stages=stages, overrides=overrides)
    conn = connect(campaign, Settings(), f"{campaign.name}-plan")
    try:
        runner = CampaignRunner(campaign, conn.ctx, conn.ops, Recorder(f"{campaign.name}-plan"))
        out.print(render_plan(campaign, runner.plan_all()), markup=False, highlight=False)
    finally:
        conn.close()


@app.command()
@user_errors
def plan(
    file: Annotated[str, typer.Argument(help="blueprint file or stock name")],
    target: Annotated[str | None, typer.Option(help="'lab' or a kubeconfig context")] = None,
    stage: Annotated[list[str] | None, typer.Option(help="only these stages")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="path=value override")] = None,
) -> None:
    """Print the plan: resolved targets, what will change and how it is undone. Changes nothing."""
    _print_plan(file, target, stage or None, set_ or None)


@app.command()
@user_errors
def run(
    file: Annotated[str, typer.Argument(help="blueprint file or stock name")],
    target: Annotated[str | None, typer.Option(help="'lab' or a kubeconfig context")] = None,
    stage: Annotated[list[str] | None, typer.Option(help="only these stages (repeatable)")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="path=value, e.g. stages[0].observe=10s")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="auto-approve approval-required stages")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the plan only")] = False,
) -> None:
    """Run a campaign (a local ephemeral Prefect unless PREFECT_API_URL is set); prints where the report is."""
    from flows.loading import load_campaign

    campaign, _ = load_campaign(file, target=target, stages=stage or None, overrides=set_ or None)
    if dry_run:
        _print_plan(file, target, stage or None, set_ or None)
        return
    prefect_defaults()
    quiet_console()
    from flows.campaign import run_campaign
    from flows.params import CampaignParams
    from flows.runview import RunView

    params = CampaignParams(
        blueprint=file,
        target=target,
        stages=stage or [],
        overrides=set_ or [],
        approval="auto" if yes else "prompt",
        started_by=user_name(),
    )
    with RunView(campaign, out) as view:
        try:
            run_campaign(params)
        except RuntimeError as e:
            if "Prefect API server" not in str(e):
                raise
            raise OrchestrationUnavailable(f"{e} (set PREFECT_API_URL to use a running server)") from None
        finally:
            view.close()
            _where(view, campaign.name)
    if view.status != "completed":
        raise typer.Exit(1)


def _where(view: Any, name: str) -> None:
    """Print the run's status and where its report (or at least its record) is."""
    if not view.run_dir:
        return
    report = Path(view.run_dir) / "report" / "report.html"
    where = report if report.exists() else Path(view.run_dir) / "record.json"
    out.print(f"{name}: [bold]{view.status}[/bold]; report: {where}", highlight=False)


@app.command()
@user_errors
def reconcile(
    target: Annotated[str, typer.Option(help="'lab' or a kubeconfig context")] = "lab",
    release_lease: Annotated[bool, typer.Option(help="also drop a dead run's campaign lock")] = False,
) -> None:
    """Revert whatever killed runs left on the target, object by object (exit 1 if a rollback failed)."""
    from flows.reconcile import reconcile_target
    from tasks.settings import Settings

    settings = Settings()
    results = reconcile_target(
        target,
        settings,
        log=lambda m: out.print(m, markup=False, highlight=False),
        release_lease=release_lease,
    )
    if release_lease and prefect_server_configured():
        from flows.locking import limit_name, release_limit

        if release_limit(target):
            out.print(f"freed the Prefect concurrency limit {limit_name(target)!r}", highlight=False)
    failed = [r for r in results if r.outcome != "rolled-back"]
    out.print(
        f"reconcile {target}: {len(results)} open entr{'y' if len(results) == 1 else 'ies'}, "
        f"{len(failed)} failed",
        highlight=False,
    )
    if failed:
        raise typer.Exit(1)


@app.command("search-limit")
@user_errors
def search_limit(
    file: Annotated[str, typer.Argument(help="blueprint file or stock name")],
    param: Annotated[str, typer.Option(help="blueprint path to vary, e.g. stages[0].faults[0].rate")],
    from_: Annotated[float, typer.Option("--from", help="lowest intensity (expected to hold)")],
    to: Annotated[float, typer.Option(help="highest intensity (expected to break)")],
    resolution: Annotated[float, typer.Option(help="stop when the interval is this narrow")] = 1.0,
    target: Annotated[str | None, typer.Option(help="'lab' or a kubeconfig context")] = None,
) -> None:
    """Bisect PARAM between --from and --to (a full guarded run per probe) for where the hypothesis breaks."""
    from flows.loading import load_campaign
    from flows.search import bisect_limit, campaign_runner, yaml_number

    load_campaign(file, target=target, overrides=[f"{param}={yaml_number(from_)}"])  # fail fast on a bad path
    prefect_defaults()
    quiet_console()
    result = bisect_limit(
        campaign_runner(file, param, target, user_name()),
        from_,
        to,
        resolution,
        on_probe=lambda p: out.print(f"probe {param}={p.value:g}: {p.verdict}", markup=False, highlight=False),
    )
    out.print(result.summary(), markup=False, highlight=False)


@app.command("list-faults")
@user_errors
def list_faults() -> None:
    """Fault kinds: what each does, its blast radius and how it is undone."""
    from flows.catalogue import fault_catalogue

    for kind, desc, radius in fault_catalogue():
        out.print(f"[bold]{kind}[/bold]: {desc}", highlight=False)
        if radius:
            out.print(f"    {radius}", markup=False, highlight=False)


@app.command("import-ctk")
@user_errors
def import_ctk(
    experiment: Annotated[Path, typer.Argument(help="Chaos Toolkit experiment JSON/YAML")],
    output: Annotated[Path, typer.Option("-o", "--output", help="blueprint file to write")],
    target: Annotated[str, typer.Option(help="target cluster of the blueprint")] = "lab",
    namespace: Annotated[list[str] | None, typer.Option(help="target namespaces (default: default)")] = None,
) -> None:
    """Convert a Chaos Toolkit experiment into a one-stage blueprint of chaostoolkit faults."""
    import yaml

    from flows.ctk import ConversionError, import_experiment

    try:
        data = yaml.safe_load(experiment.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConversionError(f"cannot read {experiment}: {e}") from None
    from blueprints.schema import SCHEMA_PATH

    ref = os.path.relpath(SCHEMA_PATH, output.resolve().parent)
    output.write_text(import_experiment(data, target=target, namespaces=namespace or None, schema_ref=ref))
    out.print(f"wrote {output}", highlight=False)


@app.command("export-ctk")
@user_errors
def export_ctk(
    file: Annotated[str, typer.Argument(help="blueprint file")],
    output: Annotated[Path, typer.Option("-o", "--output", help="experiment JSON to write")],
) -> None:
    """Convert a single-stage blueprint of chaostoolkit faults into a Chaos Toolkit experiment."""
    from flows.ctk import export_campaign
    from flows.loading import load_campaign

    campaign, _ = load_campaign(file)
    output.write_text(json.dumps(export_campaign(campaign), indent=2) + "\n")
    out.print(f"wrote {output}", highlight=False)


@app.command()
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


@app.command()
@user_errors
def suggest(limit: Annotated[int, typer.Option(help="how many suggestions")] = 5) -> None:
    """Rank stock blueprints by what history says is most worth running next."""
    from flows.catalogue import suggestions

    for line in suggestions(limit):
        out.print(line, markup=False, highlight=False)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def lab(ctx: typer.Context, action: Annotated[str, typer.Argument(help="up | status | down")]) -> None:
    """Start, inspect or stop the local lab (forwards to `python -m lab`)."""
    rc = subprocess.call([sys.executable, "-m", "lab", action, *ctx.args])
    raise typer.Exit(rc)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
