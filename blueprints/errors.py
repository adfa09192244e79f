"""The root of gameday's typed errors, kept here because blueprints/ is the lowest layer.

``tasks/errors.py`` re-exports these and adds the rest of the hierarchy; import from there.
"""

from __future__ import annotations


class GamedayError(Exception):
    """Base of every error gameday raises on purpose."""

    exit_code = 1


class PermanentError(GamedayError):
    """A failure that will fail again if retried."""


class BlueprintError(PermanentError):
    """A blueprint that cannot be run; ``problems`` lists every problem with its path."""

    exit_code = 2

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(f"{head}{len(problems)} problem(s):\n" + "\n".join(f"  {p}" for p in problems))
