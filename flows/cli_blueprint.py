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
def _blueprint_files(paths: list[Path]) -> list[Path]:
    """The files to check: each file as given, each folder's *.yaml and *.yml files in name order (an empty folder
    stays, to be reported)."""
    out: list[Path] = []
    for path in paths:
        found = sorted([*path.rglob("*.yaml"), *path.rglob("*.yml")]) if path.is_dir() else [path]
        out.extend(found or [path])
    return out


def validate(
    files: Annotated[list[Path], typer.Argument(help="blueprint YAML files, or folders of them")],
    strict: Annotated[bool, typer.Option("--strict", help="treat refutability warnings as errors")] = False,
) -> None:
    """Check blueprints; print every problem with its path (exit 2 if any) and every expectation that could
    not be refuted as a warning (an error with --strict)."""
    from blueprints import load
    from blueprints.refutability import weak_expectations

    failed = 0
    for f in _blueprint_files(files):
        if f.is_dir():
            failed += 1
            err.print(f"[red]invalid[/red] {f}: a folder with no blueprint (*.yaml, *.yml) in it", highlight=False)
            continue
        try:
            c = load(f)
            warnings = weak_expectations(c)
        except BlueprintError as e:
            failed += 1
            err.print(f"[red]invalid[/red] {f}: {len(e.problems)} problem(s)", highlight=False)
            for p in e.problems:
                err.print(f"  {p}", markup=False, highlight=False)
            continue
        except Exception as e:  # noqa: BLE001 - one file gameday cannot check must not stop the others
            failed += 1
            err.print(f"[red]invalid[/red] {f}: gameday could not check it ({type(e).__name__}: {e}); this is a bug "
                      "in gameday, please report it with the file", markup=False, highlight=False)
            continue
        if warnings and strict:
            failed += 1
            err.print(f"[red]invalid[/red] {f}: {len(warnings)} expectation(s) that could not be refuted (--strict)",
                      highlight=False)
        elif warnings:
            out.print(f"[yellow]ok with {len(warnings)} warning(s)[/yellow] {f}: {c.name} ({len(c.stages)} stage(s))",
                      highlight=False)
        else:
            out.print(f"[green]ok[/green] {f}: {c.name} ({len(c.stages)} stage(s))", highlight=False)
        for w in warnings:
            (err if strict else out).print(f"  {'error' if strict else 'warning'}: {w}", markup=False,
                                           highlight=False)
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
    observable: Annotated[list[str] | None, typer.Option(
        help="NAME=PROMQL: an observable for --expect (repeatable)")] = None,
    expect: Annotated[list[str] | None, typer.Option(
        help="an expectation line, e.g. 'mean(ok_ratio) >= 0.99 during fault' (repeatable)")] = None,
) -> None:
    """Convert a Chaos Toolkit experiment into a one-stage blueprint of chaostoolkit faults; its Prometheus
    steady-state probes become expectations, and --observable/--expect add the ones it cannot express."""
    import yaml

    from flows.ctk import ConversionError, import_experiment

    try:
        data = yaml.safe_load(experiment.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConversionError(f"cannot read {experiment}: {e}") from None
    from blueprints.schema import SCHEMA_PATH

    pairs = [o.partition("=") for o in observable or []]
    bad = [o for o, (name, eq, query) in zip(observable or [], pairs, strict=True) if not (name and eq and query)]
    if bad:
        raise ConversionError(f"--observable takes NAME=PROMQL; got {bad}")
    ref = os.path.relpath(SCHEMA_PATH, output.resolve().parent)
    text = import_experiment(data, target=target, namespaces=namespace or None, schema_ref=ref,
                             observables={n: q for n, _, q in pairs}, expectations=list(expect or []))
    output.write_text(text)
    out.print(f"wrote {output}", highlight=False)


@user_errors
def export_ctk(
    file: Annotated[str, typer.Argument(help="blueprint file")],
    output: Annotated[Path, typer.Option("-o", "--output", help="experiment JSON to write")],
) -> None:
    """Convert a single-stage blueprint of chaostoolkit faults into a Chaos Toolkit experiment."""
    from blueprints import load
    from flows.ctk import export_campaign

    campaign = load(file)
    output.write_text(json.dumps(export_campaign(campaign), indent=2) + "\n")
    out.print(f"wrote {output}", highlight=False)
