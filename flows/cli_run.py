"""``gameday`` commands that act on a target: ``plan``, ``run``, ``reconcile`` and ``search-limit``.

Prefect is imported only by the commands that run flows, after :func:`flows.env.prefect_defaults` has set
a project-local Prefect home. Registered on the app in ``flows/cli.py``.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any

import typer

from blueprints import Campaign
from flows.cli_common import OrchestrationUnavailable, err, out, user_errors
from flows.env import prefect_defaults, prefect_server_configured, quiet_console, user_name
from flows.params import CampaignParams


def _print_plan(campaign: Campaign, seed: str | None = None) -> None:
    from flows.planview import plan_text
    from tasks.run.connect import connect
    from tasks.settings import Settings

    seed = seed or secrets.token_hex(4)
    conn = connect(campaign, Settings(), f"{campaign.name}-plan", selection_seed=seed)
    try:
        out.print(plan_text(campaign, conn.ctx, conn.ops, seed), markup=False, highlight=False)
    finally:
        conn.close()


def _params(file: str, target: str | None, stages: list[str] | None, overrides: list[str] | None,
            **more: Any) -> CampaignParams:
    """The flow's parameters for a blueprint and the command's options, with the campaign loaded from them once
    (BlueprintError, with every problem, before anything starts)."""
    params = CampaignParams(blueprint=file, target=target, stages=stages or [], overrides=overrides or [], **more)
    params.campaign()
    return params


def _start_orchestration() -> None:
    """Start the local ephemeral Prefect server now, when no server is configured, so that a server that cannot
    start is said before the run begins (OrchestrationUnavailable), not halfway through it."""
    if prefect_server_configured():
        return
    from prefect.server.api.server import SubprocessASGIServer

    from flows.reaper import start_reaper

    start_reaper()  # the ephemeral Prefect server this run starts must die with it
    try:
        SubprocessASGIServer().start()  # the one Prefect's client would start: it finds it running
    except RuntimeError as e:
        raise OrchestrationUnavailable(f"{e} (set PREFECT_API_URL to use a running server)") from None


@user_errors
def plan(
    file: Annotated[str, typer.Argument(help="blueprint file or stock name")],
    target: Annotated[str | None, typer.Option(help="'lab' or a kubeconfig context")] = None,
    stage: Annotated[list[str] | None, typer.Option(help="only these stages")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="path=value override")] = None,
    seed: Annotated[str | None, typer.Option(help="the selection seed (default: a new one, printed)")] = None,
) -> None:
    """Print the plan: resolved targets, what will change and how it is undone. Changes nothing."""
    _print_plan(_params(file, target, stage, set_).campaign(), seed)


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
    strict: Annotated[bool, typer.Option("--strict", help="refuse expectations that could not be refuted")] = False,
    seed: Annotated[str | None, typer.Option(
        help="the selection seed `gameday plan` printed: the run picks the targets that plan showed")] = None,
) -> None:
    """Run a campaign (a local ephemeral Prefect unless PREFECT_API_URL is set); prints where the report is."""
    from blueprints.refutability import weak_expectations

    params = _params(file, target, stage, set_, approval="auto" if yes else "prompt", started_by=user_name(),
                     selection_seed=seed or "")
    campaign = params.campaign()
    warnings = weak_expectations(campaign)
    for w in warnings:
        (err if strict else out).print(f"{'error' if strict else 'warning'}: {w}", markup=False, highlight=False)
    if strict and warnings:
        err.print("refused (--strict): nothing was injected", highlight=False)
        raise typer.Exit(2)
    if dry_run:
        _print_plan(campaign, seed)
        return
    prefect_defaults()
    quiet_console()
    _start_orchestration()
    from flows.campaign import run_campaign
    from flows.runview import RunView

    with RunView(campaign, out) as view:
        try:
            run_campaign(params)
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
    results = Path(view.run_dir) / "report" / "results.json"
    if results.exists():
        import json

        overall = json.loads(results.read_text()).get("overall", {})
        icon = {"confirmed": "✅", "refuted": "❌", "inconclusive": "⚠️"}.get(overall.get("verdict"), "?")
        out.print(f"verdict: {icon} {overall.get('verdict')}: {overall.get('reason', '')}", markup=False,
                  highlight=False)


def _free_limit(target: str) -> None:
    """Delete the target's Prefect concurrency limit (a dead run's slot) on the configured or ephemeral server."""
    prefect_defaults()
    quiet_console()
    from flows.locking import limit_name, release_limit

    if release_limit(target):
        out.print(f"freed the Prefect concurrency limit {limit_name(target)!r}", highlight=False)


@user_errors
def reconcile(
    target: Annotated[str, typer.Option(help="'lab' or a kubeconfig context")] = "lab",
    release_lease: Annotated[bool, typer.Option(help="also drop a dead run's campaign lock")] = False,
) -> None:
    """Revert whatever killed runs left on the target, object by object (exit 1 if a rollback failed)."""
    if release_lease:
        prefect_defaults()  # before Prefect is imported: the ephemeral server's home is the state dir's
    from flows.reconcile import reconcile_target
    from tasks.settings import Settings

    settings = Settings()
    results = reconcile_target(
        target,
        settings,
        log=lambda m: out.print(m, markup=False, highlight=False),
        release_lease=release_lease,
    )
    if release_lease:  # the run's Prefect server, or the ephemeral one gameday runs use (started for this)
        _free_limit(target)
    failed = [r for r in results if r.outcome != "rolled-back"]
    out.print(
        f"reconcile {target}: {len(results)} open entr{'y' if len(results) == 1 else 'ies'}, "
        f"{len(failed)} failed",
        highlight=False,
    )
    if failed:
        raise typer.Exit(1)


@user_errors
def stop(
    target: Annotated[str, typer.Option(help="'lab' or a kubeconfig context")] = "lab",
    hold: Annotated[float, typer.Option(
        min=0, help="seconds to keep new campaigns off the target after stopping (0: free it at once)")] = 0.0,
) -> None:
    """Kill switch: stop the campaign running on the target and revert every open fault of every campaign on it,
    whoever started them (exit 1 if a rollback failed)."""
    prefect_defaults()  # before Prefect is imported: the ephemeral server's home is the state dir's
    from flows.reconcile import stop_target
    from tasks.settings import Settings

    results = stop_target(target, Settings(), log=lambda m: out.print(m, markup=False, highlight=False), hold_s=hold)
    _free_limit(target)
    failed = [r for r in results if r.outcome != "rolled-back"]
    out.print(f"stop {target}: {len(results)} open entr{'y' if len(results) == 1 else 'ies'} reverted, "
              f"{len(failed)} failed", highlight=False)
    if failed:
        raise typer.Exit(1)


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
    from flows.search import bisect_limit, campaign_runner, yaml_number

    _params(file, target, None, [f"{param}={yaml_number(from_)}"])  # fail fast on a bad path
    prefect_defaults()
    quiet_console()
    result = bisect_limit(
        campaign_runner(file, param, target, user_name()),
        from_,
        to,
        resolution,
        on_probe=lambda p: out.print(
            f"probe {param}={p.value:g}: {p.verdict}", markup=False, highlight=False
        ),
    )
    out.print(result.summary(), markup=False, highlight=False)
