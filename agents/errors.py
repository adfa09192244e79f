"""The node agent's own typed errors (agents/ must not import tasks/, so it has its own small hierarchy).

Each error carries the HTTP status and the short machine-readable code the API answers with.
"""

from __future__ import annotations


class AgentFailure(Exception):
    """Base of everything the agent raises on purpose."""

    status: int = 500
    code: str = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(AgentFailure):
    """No bearer token, or one the cluster does not know."""

    status = 401
    code = "unauthenticated"


class Forbidden(AgentFailure):
    """A valid token of an identity that neither the allow-list nor a SubjectAccessReview allows."""

    status = 403
    code = "forbidden"


class BadRequest(AgentFailure):
    """The body is not JSON at all."""

    status = 400
    code = "bad-request"


class Invalid(AgentFailure):
    """A well-formed request that the protocol or this agent's limits refuse."""

    status = 422
    code = "invalid"


class NotFound(AgentFailure):
    """No active fault with that id."""

    status = 404
    code = "not-found"


class Conflict(AgentFailure):
    """A fault with that id is already active with different parameters."""

    status = 409
    code = "conflict"


class AuthUnavailable(AgentFailure):
    """The TokenReview or SubjectAccessReview API could not be used: the agent fails closed."""

    status = 503
    code = "auth-unavailable"


class BackendUnavailable(AgentFailure):
    """The node lacks what the fault needs (no GPU/driver, no iptables, ...)."""

    status = 424
    code = "backend-unavailable"


class BackendFailed(AgentFailure):
    """A backend command failed while applying or reverting a fault."""

    status = 500
    code = "backend-failed"
