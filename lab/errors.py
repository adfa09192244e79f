"""Typed errors of the lab (API answers and lab lifecycle failures)."""

from __future__ import annotations


class LabError(Exception):
    """Base class of lab runtime and lifecycle errors."""


class ApiStatusError(LabError):
    """The API server answered with an error status."""

    def __init__(self, code: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {code}: {message}")
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Whether trying again later can succeed (throttling, server trouble)."""
        return self.code in (429, 500, 502, 503, 504)


class WatchExpired(LabError):
    """A watch's resourceVersion is too old (HTTP 410): re-list."""


class LabStartError(LabError):
    """The lab did not come up within its deadline."""
