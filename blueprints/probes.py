"""Probe specs: what a steady-state check or guardrail measures, and the tolerance it must meet.

Tolerances follow Chaos Toolkit's: an exact value, a ``[low, high]`` range, a regex, or a jsonpath
(with an optional expected value). Probe behaviour lives in ``tasks/probes/``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from blueprints.common import Duration, Model


class Tolerance(Model):
    """Chaos-Toolkit-style tolerance; exactly one of value, range, regex or jsonpath."""

    value: float | int | str | bool | None = None
    range: tuple[float, float] | None = None
    regex: str | None = None
    jsonpath: str | None = None
    expect: Any = Field(default=None, description="with jsonpath: the value every match must equal")

    @model_validator(mode="after")
    def _exactly_one(self) -> Tolerance:
        given = [k for k in ("value", "range", "regex", "jsonpath") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a tolerance needs exactly one of value, range, regex, jsonpath (got {given or 'none'})")
        if self.range is not None and self.range[0] > self.range[1]:
            raise ValueError(f"range low {self.range[0]} is above high {self.range[1]}")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as e:
                raise ValueError(f"bad regex {self.regex!r}: {e}") from e
        return self


class _Probe(Model):
    name: str = Field(min_length=1)
    timeout: Duration = timedelta(seconds=5)


class PrometheusProbe(_Probe):
    """A PromQL instant query; the tolerance applies to every returned sample's value."""

    type: Literal["prometheus"] = "prometheus"
    query: str = Field(min_length=1)
    tolerance: Tolerance
    empty_is: Literal["fail", "pass"] = Field(default="fail", description="outcome when the query returns nothing")


class HttpProbe(_Probe):
    """An HTTP request; tolerance on the status code (value/range) or body (regex/jsonpath)."""

    type: Literal["http"] = "http"
    url: str = Field(pattern=r"^https?://")
    method: Literal["GET", "POST", "HEAD"] = "GET"
    tolerance: Tolerance = Tolerance(range=(200, 299))


class KubernetesProbe(_Probe):
    """Kubernetes state: deployment or DaemonSet available pods, ready nodes, cordoned nodes, running or ready
    pods."""

    type: Literal["kubernetes"] = "kubernetes"
    check: Literal["deployment-available", "daemonset-available", "nodes-ready", "nodes-cordoned", "pods-running",
                   "pods-ready", "node-ready"]
    namespace: str | None = None
    object_name: str | None = Field(default=None, alias="object")
    label_selector: dict[str, str] = Field(default_factory=dict)
    tolerance: Tolerance

    @model_validator(mode="after")
    def _needs(self) -> KubernetesProbe:
        if self.check in ("deployment-available", "daemonset-available") and not (self.namespace and self.object_name):
            raise ValueError(f"check {self.check!r} needs namespace and object")
        if self.check == "node-ready" and not self.object_name:
            raise ValueError("check 'node-ready' needs object (the node name)")
        return self


class DnsProbe(_Probe):
    """A DNS lookup against a given server; tolerance on the rcode name or the answer count."""

    type: Literal["dns"] = "dns"
    server: str = Field(description="ip:port of the DNS server, or 'lab' for the lab's kube-dns")
    qname: str = Field(min_length=1)
    rdtype: Literal["A", "AAAA", "SRV", "TXT"] = "A"
    measure: Literal["rcode", "answers", "success-ratio"] = "rcode"
    attempts: int = Field(default=1, ge=1, le=100)
    tolerance: Tolerance = Tolerance(value="NOERROR")

    @field_validator("server")
    @classmethod
    def _server(cls, v: str) -> str:
        if v != "lab" and not re.match(r"^[\d.]+(:\d+)?$|^\[[0-9a-fA-F:]+\](:\d+)?$", v):
            raise ValueError(f"server {v!r} must be ip[:port] or 'lab'")
        return v


class ChaosToolkitProbe(_Probe):
    """Any Chaos Toolkit probe (provider python/process/http), run through chaoslib."""

    type: Literal["chaostoolkit"] = "chaostoolkit"
    provider: dict[str, Any]
    tolerance: Any = None

    @field_validator("provider")
    @classmethod
    def _provider(cls, v: dict[str, Any]) -> dict[str, Any]:
        kind = v.get("type")
        if kind not in ("python", "process", "http"):
            raise ValueError(f"provider.type must be python, process or http, got {kind!r}")
        need = {"python": ("module", "func"), "process": ("path",), "http": ("url",)}[kind]
        missing = [k for k in need if k not in v]
        if missing:
            raise ValueError(f"{kind} provider needs {', '.join(missing)}")
        return v


Probe = Annotated[
    PrometheusProbe | HttpProbe | KubernetesProbe | DnsProbe | ChaosToolkitProbe, Field(discriminator="type")
]
"""Any probe, chosen by its ``type``."""


Severity = Literal["warn", "pause", "abort", "halt"]
"""What a guardrail's breach does (a graded circuit breaker): ``warn`` records it; ``pause`` holds the stage's
further injections until it clears (``pause_timeout`` later it aborts the stage); ``abort`` rolls the stage back
(the campaign goes on only with ``continue_on_abort``); ``halt`` rolls back and stops the campaign."""


class Band(Model):
    """An anomaly band learnt from the baseline window: the guardrail breaches when its Prometheus probe's value
    leaves what the same query did during the baseline, within the probe's own tolerance range, which holds until
    the band is learnt and whenever it cannot be. ``sigma``: mean ± max(k·σ, floor) of the baseline's values
    (pooled over its series); ``arma``: an ARMA(p, q) model fitted to each series, its forecast interval at
    ``confidence`` as far ahead as the baseline reaches back (half-width at least ``floor``), the union over series."""

    method: Literal["sigma", "arma"] = Field(default="sigma", description=(
        "sigma: mean ± k·σ; arma: an ARMA forecast interval (statsmodels), for series whose baseline drifts or "
        "is autocorrelated, where σ of the pooled values misjudges what comes next"))
    k: float = Field(default=4.0, gt=0, description="sigma: how many baseline standard deviations each side")
    order: tuple[int, int] = Field(default=(1, 1), description="arma: (p, q), the AR and MA orders, 0-4 each")
    confidence: float = Field(default=0.999, gt=0.5, lt=1, description="arma: the forecast interval's coverage")
    floor: float = Field(default=0.0, ge=0, description="the least half-width, for a baseline that hardly moved")
    side: Literal["both", "upper", "lower"] = Field(default="upper", description="which edges breach")
    min_samples: int = Field(default=5, ge=2, description=(
        "fewer baseline samples than this: no band (the probe's tolerance alone, and a note); arma's default and "
        "least is 3 per parameter, 3·(p + q + 2)"))

    @model_validator(mode="before")
    @classmethod
    def _arma_samples(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("method") == "arma" and "min_samples" not in data:
            order = data.get("order", (1, 1))
            if isinstance(order, (list, tuple)) and len(order) == 2 and all(isinstance(n, int) for n in order):
                return {**data, "min_samples": 3 * (sum(order) + 2)}
        return data

    @field_validator("order")
    @classmethod
    def _small_order(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not all(0 <= n <= 4 for n in v):
            raise ValueError("order: p and q are each 0 to 4")
        return v

    @model_validator(mode="after")
    def _enough_for_the_model(self) -> Band:
        if self.method == "arma" and self.min_samples < 3 * (sum(self.order) + 2):
            raise ValueError(f"min_samples: an ARMA{self.order} band needs at least {3 * (sum(self.order) + 2)} "
                             f"baseline samples to fit (3 per parameter, mean and variance included)")
        return self


class Guardrail(Model):
    """A probe evaluated every ``every`` from a stage's first injection to the end of its recovery window; out of
    tolerance, not evaluable or not answering within its timeout counts as a breach, which does what ``severity``
    says."""

    name: str = Field(min_length=1)
    probe: Probe
    every: Duration = timedelta(seconds=2)
    severity: Severity = Field(default="abort", description=(
        "warn: record it; pause: no further injections until it clears (abort after pause_timeout); abort: roll "
        "the stage back; halt: roll back and stop the campaign"))
    pause_timeout: Duration = Field(default=timedelta(seconds=60), description=(
        "pause: how long the stage holds for the guardrail to clear before it is aborted"))
    refutes: bool | None = Field(
        default=None,
        description="whether a breach refutes the belief (true) or only makes the run inconclusive (false); "
        "default: true when the guardrail reads a metric that an observable named by the hypothesis reads",
    )
    band: Band | None = Field(default=None, description=(
        "anomaly guardrail: breach when the value leaves the band learnt from the baseline window (a prometheus "
        "probe with a range tolerance, which still bounds it)"))

    @model_validator(mode="after")
    def _band_needs_a_metric(self) -> Guardrail:
        if self.band is not None and (self.probe.type != "prometheus" or self.probe.tolerance.range is None):
            raise ValueError("band: an anomaly band needs a prometheus probe with a range tolerance (the outer bound)")
        return self
