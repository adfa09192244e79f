"""The ``prometheus`` probe: a PromQL instant query; the tolerance must hold for every returned sample."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from tasks.errors import ProbeError
from tasks.probes.tolerance import within

if TYPE_CHECKING:
    from blueprints.probes import PrometheusProbe
    from tasks.probes import ProbeContext, ProbeResult

_RETRY_STATUS = frozenset({502, 503, 504})


def render_labels(metric: dict[str, str]) -> str:
    """A label set as PromQL writes it: ``{job="x",pod="a"}`` (``__name__`` left out)."""
    items = sorted((k, v) for k, v in metric.items() if k != "__name__")
    return "{" + ",".join(f'{k}="{v}"' for k, v in items) + "}"


def _get_retried_once(http: httpx.Client, url: str, params: dict[str, str]) -> httpx.Response:
    """GET ``url``, once more at once after a failed request or a 502/503/504: a guardrail must fail fast when
    Prometheus is down (one quick retry, no back-off)."""
    try:
        resp = http.get(url, params=params)
        if resp.status_code not in _RETRY_STATUS:
            return resp
    except httpx.TransportError:
        pass
    return http.get(url, params=params)


def instant(url: str, query: str, timeout_s: float) -> list[tuple[str, float]]:
    """Run an instant query: (label set, value) per sample; ProbeError when Prometheus cannot answer. The
    server's certificate is not verified."""
    try:
        with httpx.Client(timeout=max(1, int(timeout_s)), verify=False) as http:
            resp = _get_retried_once(http, f"{url}/api/v1/query", {"query": query})
        if resp.status_code != 200:
            raise ProbeError(f"prometheus at {url} could not answer {query!r}: HTTP {resp.status_code} "
                             f"({resp.content!r})")
        data = resp.json()["data"]["result"]
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as e:
        raise ProbeError(f"prometheus at {url} could not answer {query!r}: {e}") from e
    out: list[tuple[str, float]] = []
    for sample in data:
        if "value" in sample:
            out.append((render_labels(sample.get("metric", {})), float(sample["value"][1])))
        elif isinstance(sample, list | tuple) and len(sample) == 2:  # scalar result
            out.append(("{}", float(sample[1])))
    return out


def evaluate(spec: PrometheusProbe, ctx: ProbeContext) -> ProbeResult:
    """Evaluate the query; every sample must be within tolerance (``empty_is`` decides for no samples)."""
    from tasks.probes import ProbeResult

    if not ctx.prometheus_url:
        raise ProbeError(f"probe {spec.name!r}: no Prometheus URL for this target")
    samples = instant(ctx.prometheus_url, spec.query, spec.timeout.total_seconds())
    if not samples:
        ok = spec.empty_is == "pass"
        return ProbeResult(ok=ok, value=None, message=f"{spec.query!r} returned no samples (empty_is={spec.empty_is})")
    bad = [(s, v) for s, v in samples if not within(spec.tolerance, v)]
    values = [v for _, v in samples] if len(samples) > 1 else samples[0][1]
    msg = f"{len(samples) - len(bad)}/{len(samples)} sample(s) within tolerance"
    if bad:
        msg += "; outside: " + ", ".join(f"{s}={v:g}" for s, v in bad[:5])
    return ProbeResult(ok=not bad, value=values, message=msg)
