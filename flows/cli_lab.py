"""``gameday lab``: start, inspect, stop or build the local lab by forwarding to ``python -m lab``.

A separate process, so nothing of ``lab/`` is imported into gameday's own packages. Registered on the app in
``flows/cli.py``.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated

import typer

LAB_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}
"""Click context settings that pass ``gameday lab``'s extra arguments through untouched."""


def lab(ctx: typer.Context, action: Annotated[str, typer.Argument(help="up | status | down | build")]) -> None:
    """Start, inspect or stop the local lab, or build its pinned components (forwards to `python -m lab`)."""
    rc = subprocess.call([sys.executable, "-m", "lab", action, *ctx.args])
    raise typer.Exit(rc)
