"""Typed errors raised while building a report (reports/ stands alone, so it defines its own)."""

from __future__ import annotations


class ReportError(Exception):
    """A report cannot be built: missing or unreadable record or frames, runs of different campaigns."""
