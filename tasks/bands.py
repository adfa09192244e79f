"""Anomaly guardrails: a band learnt from the baseline window becomes the guardrail's tolerance for the stages.

After the baseline window, :func:`learn_bands` range-queries each banded guardrail's PromQL over that window (one
sample per ``every``, at least a second apart) and narrows the probe's range tolerance on the sides the band names
(the outer range still bounds it):

- ``sigma``: the values of all its series pooled, mean ± max(k·σ, floor);
- ``arma``: statsmodels' ARIMA(p, 0, q) with a constant fitted to each series, and its forecast interval at
  ``confidence`` as many steps ahead as the series has baseline samples (the interval widens with the horizon
  towards the process's own spread, so the band does not tighten to the last few samples), half-width at least
  ``floor``; the union over the series.

A guardrail whose query had fewer than ``min_samples`` finite values in the baseline (per series for ``arma``),
that Prometheus could not answer for, or whose model could not be fitted, keeps its probe's tolerance, and the note
says so.
"""

from __future__ import annotations

import math
import warnings
from datetime import datetime
from typing import Any

import numpy as np

from pydantic import BaseModel, ConfigDict

from blueprints.probes import Guardrail, Tolerance
from tasks.errors import ProbeError
from tasks.probes.metrics import fetch_frames


class LearntBand(BaseModel):
    """What the baseline said about one banded guardrail."""

    model_config = ConfigDict(extra="forbid")

    guardrail: str
    method: str = "sigma"
    samples: int
    mean: float | None = None
    std: float | None = None
    range: tuple[float, float] | None = None
    note: str


def _edges(guardrail: Guardrail, mean: float, low: float, high: float) -> tuple[float, float]:
    band, outer = guardrail.band, guardrail.probe.tolerance.range
    assert band is not None and outer is not None
    low = max(outer[0], min(low, mean - band.floor)) if band.side in ("both", "lower") else outer[0]
    high = min(outer[1], max(high, mean + band.floor)) if band.side in ("both", "upper") else outer[1]
    return low, max(low, high)


def band_range(values: list[float], guardrail: Guardrail) -> tuple[float, float, float, float]:
    """(low, high, mean, σ) of a sigma band's tolerance given its baseline values (at least two)."""
    assert guardrail.band is not None
    mean = math.fsum(values) / len(values)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
    half = guardrail.band.k * std
    return (*_edges(guardrail, mean, mean - half, mean + half), mean, std)


def _forecast(y: Any, order: tuple[int, int], confidence: float) -> tuple[tuple[float, float], float, float]:
    """ARIMA(p, 0, q) with a constant fitted to ``y``: its forecast interval, mean and standard error ``len(y)``
    steps ahead (at most 1000)."""
    from statsmodels.tsa.arima.model import ARIMA  # type: ignore[import-untyped]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # convergence and frequency warnings: the interval is checked below
        try:
            forecast = ARIMA(y, order=(order[0], 0, order[1]), trend="c").fit().get_forecast(steps=min(len(y), 1000))
        except Exception as e:  # noqa: BLE001 - statsmodels raises many kinds; a model not fitted leaves the probe
            raise ValueError(f"the ARMA{order} fit failed: {type(e).__name__}: {e}") from e
    low, high = (float(v) for v in np.asarray(forecast.conf_int(alpha=1 - confidence))[-1])
    mean, error = float(np.asarray(forecast.predicted_mean)[-1]), float(np.asarray(forecast.se_mean)[-1])
    if not all(math.isfinite(v) for v in (low, high, mean, error)):
        raise ValueError(f"the ARMA{order} fit gave no finite forecast interval")
    return (low, high), mean, error


def arma_range(series: list[list[float]], guardrail: Guardrail) -> tuple[float, float, float, float]:
    """(low, high, mean, standard error) of an arma band's tolerance: each series' ARMA forecast interval as far
    ahead as it has samples, at least ± floor, their union (mean and standard error: the widest series');
    ValueError when a fit fails."""
    band = guardrail.band
    assert band is not None and series
    lows, highs, means, errors = [], [], [], []
    for values in series:
        y = np.asarray(values, dtype=float)
        if float(np.ptp(y)) == 0.0:   # nothing to fit: a flat baseline is its value ± floor
            interval, mean, error = (float(y[0]), float(y[0])), float(y[0]), 0.0
        else:
            interval, mean, error = _forecast(y, band.order, band.confidence)
        lows.append(min(interval[0], mean - band.floor))
        highs.append(max(interval[1], mean + band.floor))
        means.append(mean)
        errors.append(error)
    widest = int(np.argmax(np.subtract(highs, lows)))
    low, high = _edges(guardrail, means[widest], min(lows), max(highs))
    return low, high, means[widest], errors[widest]


def _baseline(guardrail: Guardrail, prometheus_url: str | None, start: datetime | None,
              end: datetime | None) -> list[list[float]]:
    """The finite values of each series of the guardrail's query over the baseline window, in time order;
    ValueError saying why they cannot be read."""
    if start is None or end is None or end <= start:
        raise ValueError("the campaign has no baseline window")
    if not prometheus_url:
        raise ValueError("no Prometheus to read the baseline from")
    query: Any = getattr(guardrail.probe, "query", "")
    try:
        frame = fetch_frames(prometheus_url, {guardrail.name: query}, start, end,
                             step=max(guardrail.every.total_seconds(), 1.0))
    except ProbeError as e:
        raise ValueError(f"the baseline could not be read: {e}") from e
    return [[float(v) for v in part["value"] if math.isfinite(float(v))]
            for _, part in frame.sort_values("timestamp").groupby("series", sort=True)]


def _fit(guardrail: Guardrail, series: list[list[float]]) -> tuple[float, float, float, float]:
    """(low, high, mean, σ or standard error) of a band from its baseline series; ValueError saying why not."""
    band = guardrail.band
    assert band is not None
    values = [v for one in series for v in one]
    if band.method == "sigma":
        if len(values) < band.min_samples:
            raise ValueError(f"{len(values)} baseline sample(s), fewer than min_samples {band.min_samples}")
        return band_range(values, guardrail)
    long_enough = [one for one in series if len(one) >= band.min_samples]
    if not long_enough:
        raise ValueError(f"{len(values)} baseline sample(s), fewer than min_samples {band.min_samples}"
                         + (" in every series" if len(series) > 1 else ""))
    return arma_range(long_enough, guardrail)


def learn_bands(guardrails: list[Guardrail], prometheus_url: str | None, start: datetime | None,
                end: datetime | None) -> tuple[list[Guardrail], list[LearntBand]]:
    """The guardrails with every band learnt from [start, end] (None: there was no baseline window) as a range
    tolerance, and what was learnt."""
    out: list[Guardrail] = []
    learnt: list[LearntBand] = []
    for g in guardrails:
        if g.band is None:
            out.append(g)
            continue
        band = g.band
        series: list[list[float]] = []
        try:
            series = _baseline(g, prometheus_url, start, end)
            low, high, mean, std = _fit(g, series)
        except ValueError as e:
            out.append(g)
            learnt.append(LearntBand(guardrail=g.name, method=band.method, samples=sum(map(len, series)),
                                     note=f"no band: {e}; the probe's tolerance alone applies"))
            continue
        values = [v for one in series for v in one]
        series = [one for one in series if len(one) >= band.min_samples]
        probe = g.probe.model_copy(update={"tolerance": Tolerance(range=(low, high))})
        out.append(g.model_copy(update={"probe": probe}))
        how = (f"an ARMA{band.order} forecast interval at {band.confidence:g} over {len(series)} series "
               f"(forecast {mean:.6g}, standard error {std:.6g}, floor {band.floor:g})" if band.method == "arma"
               else f"mean {mean:.6g}, σ {std:.6g}, k {band.k:g}, floor {band.floor:g}")
        learnt.append(LearntBand(guardrail=g.name, method=band.method, samples=len(values), mean=mean, std=std,
                                 range=(low, high),
                                 note=f"band [{low:.6g}, {high:.6g}] from {len(values)} baseline samples ({how})"))
    return out, learnt
