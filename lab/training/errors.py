"""Errors raised by the lab's training job and its network namespaces."""

from __future__ import annotations


class TrainingError(Exception):
    """Base class for training-job errors."""


class NotRootError(TrainingError):
    """Creating network namespaces or iptables rules needs root (CAP_NET_ADMIN)."""


class NetnsError(TrainingError):
    """An `ip`/`iptables` command failed while building, changing or removing the job's network."""


class JobError(TrainingError):
    """The training job could not be started or supervised."""
