"""Typed errors raised by the lab's workload programs."""

from __future__ import annotations


class WorkloadError(Exception):
    """Base class of every error raised under ``lab.workload``."""


class DnsLookupError(WorkloadError):
    """A service name could not be resolved; ``result`` is the lookup outcome label."""

    def __init__(self, name: str, result: str) -> None:
        super().__init__(f"resolving {name}: {result}")
        self.name = name
        self.result = result


class NotStartedError(WorkloadError):
    """A program was used before ``start()``."""
