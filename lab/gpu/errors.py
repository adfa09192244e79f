"""Errors raised by the lab's GPU parts."""

from __future__ import annotations


class GpuLabError(Exception):
    """Base class for lab GPU errors."""


class AgentStartError(GpuLabError):
    """A node agent process did not start or did not become ready."""


class RemediationError(GpuLabError):
    """The health monitor could not carry out an action against the API server."""
