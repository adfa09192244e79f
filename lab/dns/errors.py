"""Typed errors raised by the lab's DNS server."""

from __future__ import annotations


class DnsLabError(Exception):
    """Base class of every error raised under ``lab.dns``."""


class CorefileError(DnsLabError):
    """The Corefile text could not be parsed (the message names the line)."""


class ApiError(DnsLabError):
    """The API server answered a request with an unexpected status."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.retry_after = retry_after
