"""Recording observables: Prometheus range queries → one long-form pandas DataFrame.

Columns: ``observable``, ``series`` (label set rendered like ``{pod="a"}``), ``timestamp`` (UTC,
timezone-aware) and ``value`` (float). One row per (observable, series, timestamp).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException

from tasks.errors import ProbeError
from tasks.probes.prometheus import render_labels

COLUMNS = ["observable", "series", "timestamp", "value"]


def _step(step: timedelta | float | str) -> str:
    if isinstance(step, timedelta):
        return f"{step.total_seconds():g}s"
    if isinstance(step, int | float):
        return f"{float(step):g}s"
    return step


def whole_seconds(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[start, end] narrowed to whole seconds inside it (the Prometheus client rounds to the nearest second, which
    could put a window's first evaluation before its start: a baseline read the fault before it, a fault window
    the moment before the injection); unchanged when no whole second lies inside."""
    first, last = math.ceil(start.timestamp()), math.floor(end.timestamp())
    if first > last:
        return start, end
    return datetime.fromtimestamp(first, start.tzinfo or UTC), datetime.fromtimestamp(last, end.tzinfo or UTC)


def as_queries(observables: Mapping[str, str] | Iterable[Any]) -> dict[str, str]:
    """name → PromQL, from a mapping or from objects with ``name`` and ``query`` (blueprint Observables)."""
    if isinstance(observables, Mapping):
        return {str(k): str(v) for k, v in observables.items()}
    items: Iterable[Any] = observables
    return {str(o.name): str(o.query) for o in items}


def fetch_frames(prom_url: str, observables: Mapping[str, str] | Iterable[Any], start: datetime, end: datetime,
                 step: timedelta | float | str = 1.0, timeout_s: int = 30) -> pd.DataFrame:
    """Range-query every observable over [start, end] (its whole seconds); ProbeError if Prometheus cannot
    answer."""
    prom = PrometheusConnect(url=prom_url, disable_ssl=True, timeout=timeout_s)
    start, end = whole_seconds(start, end)
    parts: list[pd.DataFrame] = []
    for name, query in as_queries(observables).items():
        try:
            result = prom.custom_query_range(query, start_time=start, end_time=end, step=_step(step))
        except (PrometheusApiClientException, OSError, ValueError) as e:  # requests' errors are OSErrors
            raise ProbeError(f"prometheus range query for {name!r} failed: {e}") from e
        for series in result:
            values = series.get("values") or []
            if not values:
                continue
            frame = pd.DataFrame(values, columns=["t", "value"])
            parts.append(pd.DataFrame({
                "observable": name,
                "series": render_labels(series.get("metric", {})),
                "timestamp": pd.to_datetime(frame["t"].astype(float), unit="s", utc=True),
                "value": pd.to_numeric(frame["value"], errors="coerce").astype(float),
            }))
    if not parts:
        return pd.DataFrame({"observable": pd.Series(dtype=str), "series": pd.Series(dtype=str),
                             "timestamp": pd.Series(dtype="datetime64[ns, UTC]"),
                             "value": pd.Series(dtype=float)})
    return pd.concat(parts, ignore_index=True)[COLUMNS]
