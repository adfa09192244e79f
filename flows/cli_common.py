"""What every ``gameday`` command shares: the two consoles and the user-error boundary.

User errors (every :class:`GamedayError`) print a clear message and exit with the error's ``exit_code``;
never a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from blueprints.errors import BlueprintError, GamedayError


def _console(stderr: bool = False) -> Console:
    """A console that wraps lines at the terminal's width, and not at all when its output is piped or logged (CI,
    Prefect workers, a file): a line that is a record of what happened stays one line for grep."""
    console = Console(stderr=stderr)
    console.soft_wrap = not console.is_terminal
    return console


out = _console()
"""Where commands print their results."""
err = _console(stderr=True)
"""Where commands print problems."""
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
