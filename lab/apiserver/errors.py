"""API errors and the ``Status`` bodies the real Kubernetes API server answers with."""

from __future__ import annotations

from typing import Any

REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "AlreadyExists",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
}


class ApiError(Exception):
    """An error the server answers as a ``Status`` object with an HTTP code."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        """The Status object for this error, shaped like the real API server's."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": kind}
    if group:
        details["group"] = group
    return details


def _qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> ApiError:
    """404 NotFound for a named object."""
    return ApiError(
        404, f'{_qualified(plural, group)} "{name}" not found', "NotFound", _details(name, group, plural)
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    """409 AlreadyExists for create."""
    return ApiError(
        409,
        f'{_qualified(plural, group)} "{name}" already exists',
        "AlreadyExists",
        _details(name, group, plural),
    )


def conflict(plural: str, group: str, name: str) -> ApiError:
    """409 Conflict for a stale resourceVersion on update."""
    msg = (
        f'Operation cannot be fulfilled on {_qualified(plural, group)} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    return ApiError(409, msg, "Conflict", _details(name, group, plural))


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid with field causes (reason type, field, message)."""
    text = "; ".join(f"{field}: {message}" for _, field, message in causes)
    details = _details(name, group, kind)
    details["causes"] = [{"reason": r, "message": m, "field": f} for r, f, m in causes]
    gk = f"{kind}.{group}" if group else kind
    return ApiError(422, f'{gk} "{name}" is invalid: {text}', "Invalid", details)


def bad_request(message: str) -> ApiError:
    """400 BadRequest."""
    return ApiError(400, message, "BadRequest")


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    """405 MethodNotAllowed."""
    return ApiError(405, message, "MethodNotAllowed")


def expired(message: str) -> ApiError:
    """410 Expired (the real server's reason for a too-old resourceVersion or continue token)."""
    return ApiError(410, message, "Expired")


def unauthorized() -> ApiError:
    """401 Unauthorized."""
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(message: str) -> ApiError:
    """403 Forbidden."""
    return ApiError(403, message, "Forbidden")


def too_many_requests(message: str) -> ApiError:
    """429 TooManyRequests with Retry-After: 1, as APF answers."""
    return ApiError(429, message, "TooManyRequests", {"retryAfterSeconds": 1}, headers={"Retry-After": "1"})
