"""gameday's typed errors: one hierarchy, two kinds of failure (permanent vs. worth retrying).

Everything gameday raises on purpose derives from :class:`GamedayError`; the CLI turns these into a
clear message and a non-zero exit code instead of a traceback.
"""

from __future__ import annotations

from blueprints.errors import BlueprintError, GamedayError, PermanentError

__all__ = [
    "ActivityFailed", "AgentError", "BlastRadiusExceeded", "BlueprintError", "CampaignLocked", "Conflict",
    "GamedayError", "InjectionFailed", "NotFound", "PermanentError", "PreflightFailed",
    "ProbeError", "RollbackFailed", "TargetError", "TemporaryError", "UnknownFaultKind",
]


class TemporaryError(GamedayError):
    """A failure that may succeed if retried after ``delay`` seconds."""

    def __init__(self, message: str, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay


class BlastRadiusExceeded(PermanentError):
    """A fault would touch more than the blueprint's declared blast radius."""

    exit_code = 2


class TargetError(PermanentError):
    """The target cluster cannot be reached or lacks something the campaign needs."""

    exit_code = 3


class NotFound(TargetError):
    """The object asked for does not exist on the target (HTTP 404)."""


class Conflict(TargetError):
    """The object already exists or changed under us (HTTP 409)."""


class PreflightFailed(PermanentError):
    """Steady state did not hold, or a guardrail could not be evaluated, before any injection."""

    exit_code = 4


class ProbeError(TemporaryError):
    """A probe could not be evaluated (not the same as a probe that evaluated to 'out of tolerance')."""


class InjectionFailed(PermanentError):
    """A fault could not be applied."""


class RollbackFailed(PermanentError):
    """A rollback did not complete; the ledger keeps the entry so reconcile can retry."""


class CampaignLocked(PermanentError):
    """Another campaign holds the target's lease."""

    exit_code = 5


class ActivityFailed(PermanentError):
    """A Chaos Toolkit activity (extension code) failed; wraps whatever it raised."""


class AgentError(PermanentError):
    """A node agent refused or failed a request."""


class UnknownFaultKind(PermanentError):
    """No behaviour is registered for a fault kind."""
