"""``gameday`` commands that read or write blueprints without touching a target.

``validate``, ``list-faults``, ``import-ctk`` and ``export-ctk``: registered on the app in ``flows/cli.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from blueprints.errors import BlueprintError
from flows.cli_common import err, out, user_errors


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


@user_errors
def list_faults() -> None:
    """Fault kinds: what each does, its blast radius and how it is undone."""
    from flows.catalogue import fault_catalogue

    for kind, desc, radius in fault_catalogue():
        out.print(f"[bold]{kind}[/bold]: {desc}", highlight=False)
        if radius:
            out.print(f"    {radius}", markup=False, highlight=False)


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
