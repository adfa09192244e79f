"""Probes: one module per kind, and :func:`evaluate`, the one entry point the runner calls.

A probe either evaluates (``ProbeResult.ok`` says whether the tolerance held) or raises
:class:`ProbeError` when it cannot be evaluated at all, so guardrails fail closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tasks.errors import GamedayError, ProbeError

if TYPE_CHECKING:
    from blueprints.probes import Probe
    from tasks.cluster import LabEndpoints


@dataclass(frozen=True)
class ProbeResult:
    """A probe's outcome: whether it met its tolerance, the measured value, and a message."""

    ok: bool
    value: Any
    message: str


@dataclass
class ProbeContext:
    """What probes may use: the cluster facade, Prometheus, the lab's endpoints, CTK configuration."""

    cluster: Any = None
    prometheus_url: str | None = None
    lab: LabEndpoints | None = None
    configuration: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, Any] = field(default_factory=dict)


def evaluate(spec: Probe, ctx: ProbeContext) -> ProbeResult:
    """Evaluate one probe; ProbeError when it cannot be evaluated (never a silent pass)."""
    from tasks.probes import chaostoolkit, dns, http, k8s, prometheus

    handlers = {
        "prometheus": prometheus.evaluate, "http": http.evaluate, "kubernetes": k8s.evaluate,
        "dns": dns.evaluate, "chaostoolkit": chaostoolkit.evaluate,
    }
    handler = handlers.get(spec.type)
    if handler is None:
        raise ProbeError(f"no probe behaviour for type {spec.type!r}")
    try:
        result: ProbeResult = handler(spec, ctx)  # type: ignore[operator]
        return result
    except ProbeError:
        raise
    except GamedayError as e:
        raise ProbeError(f"probe {spec.name!r} could not be evaluated: {e}") from e


__all__ = ["ProbeContext", "ProbeResult", "evaluate"]
