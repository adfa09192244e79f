"""Baseline-versus-fault statistics for one observable, computed over every sample (never the display copy).

Samples of all series of an observable are pooled for the summary statistics, the Mann–Whitney U test and
Cliff's delta. The baseline band is mean ± 3σ of the pooled baseline; the anomaly share is the fraction of a
window's samples outside it. SLO violation density counts instants (scrape timestamps) at which any series
violates the observable's SLO, per minute of window. Time to recover is the worst series' first time after
rollback from which it stays inside the band for ``recover_samples`` consecutive samples (None: never).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy import stats as sps

from blueprints.campaign import Observable
from reports.frames import F64, Run, Series, ns

OPS: dict[str, Callable[[F64, float], np.ndarray]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
}
DEFAULT_RECOVER_SAMPLES = 10


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Summary(_Out):
    """Distribution summary of a window's samples."""

    n: int
    mean: float | None = None
    std: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


class Band(_Out):
    """The baseline band: mean ± 3σ of the pooled baseline samples."""

    mean: float
    std: float
    low: float
    high: float


class WindowStats(_Out):
    """One window of one observable, compared with the baseline."""

    window: str
    stage: str | None = None
    start_s: float
    end_s: float
    summary: Summary
    amplification: float | None = None
    mwu_u: float | None = None
    mwu_p: float | None = None
    cliffs_delta: float | None = None
    anomaly_share: float | None = None
    slo_violations_per_min: float | None = None
    time_to_recover_s: float | None = None
    recovered: bool | None = None


class ObservableStats(_Out):
    """Every window's statistics for one observable of one run."""

    observable: str
    unit: str = ""
    series: int
    band: Band | None = None
    windows: list[WindowStats]


def summarize(v: F64) -> Summary:
    """n, mean, std (population), p50/p95/p99 (linear interpolation) of ``v``."""
    if v.size == 0:
        return Summary(n=0)
    p50, p95, p99 = np.percentile(v, [50, 95, 99])
    return Summary(n=int(v.size), mean=float(v.mean()), std=float(v.std()), p50=float(p50), p95=float(p95),
                   p99=float(p99))


def mann_whitney(fault: F64, baseline: F64) -> tuple[float, float] | None:
    """Two-sided Mann–Whitney U of fault against baseline: (U of the fault sample, p); None if undefined."""
    if fault.size == 0 or baseline.size == 0:
        return None
    res = sps.mannwhitneyu(fault, baseline, alternative="two-sided")
    u, p = float(res.statistic), float(res.pvalue)
    return (u, p) if math.isfinite(p) else (u, 1.0)


def cliffs_delta(u: float, n_fault: int, n_baseline: int) -> float:
    """Cliff's delta P(X>Y) − P(X<Y) from the Mann–Whitney U of X (ties count half)."""
    return 2.0 * u / (n_fault * n_baseline) - 1.0


def band_of(baseline: F64) -> Band | None:
    """The baseline band (mean ± 3σ) or None without baseline samples."""
    if baseline.size == 0:
        return None
    mean, std = float(baseline.mean()), float(baseline.std())
    tol = max(3.0 * std, 1e-9 * max(1.0, abs(mean)))
    return Band(mean=mean, std=std, low=mean - tol, high=mean + tol)


def anomaly_share(v: F64, band: Band) -> float | None:
    """Fraction of ``v`` outside the baseline band."""
    if v.size == 0:
        return None
    return float(np.count_nonzero((v < band.low) | (v > band.high)) / v.size)


def slo_density(series: list[Series], start: int, end: int, slo: tuple[str, float]) -> float | None:
    """Instants at which any series violates the SLO, per minute of ``[start, end)``."""
    minutes = (end - start) / 60e9
    if minutes <= 0:
        return None
    op, limit = slo
    bad: list[np.ndarray] = []
    for s in series:
        t, v = s.between(start, end)
        bad.append(t[~OPS[op](v, limit)])
    violating = np.unique(np.concatenate(bad)).size if bad else 0
    return float(violating / minutes)


def first_stable(t: np.ndarray, v: F64, band: Band, k: int) -> int | None:
    """The first time (ns) from which ``k`` consecutive samples lie inside the band."""
    inside = ((v >= band.low) & (v <= band.high)).astype(np.int64)
    if inside.size < k:
        return None
    runs = np.convolve(inside, np.ones(k, dtype=np.int64), mode="valid")
    hits = np.flatnonzero(runs == k)
    return int(t[hits[0]]) if hits.size else None


def time_to_recover(series: list[Series], rollback: int, end: int, band: Band, k: int) -> float | None:
    """Seconds from rollback until the slowest series is stably back in the band; None if one never is."""
    worst = rollback
    for s in series:
        t, v = s.between(rollback, end)
        at = first_stable(t, v, band, k)
        if at is None:
            return None
        worst = max(worst, at)
    return (worst - rollback) / 1e9


def stage_rollback(run: Run, stage: str) -> int | None:
    """When a stage's faults were rolled back (the last of them), else its fault window's end."""
    for s in run.record.stages:
        if s.name == stage:
            times = [f.rolled_back_at for f in s.faults if f.rolled_back_at is not None]
            if times:
                return ns(max(times))
    faults = run.windows("fault", stage)
    return ns(faults[0].end) if faults else None


def observable_stats(run: Run, obs: Observable, recover_samples: int = DEFAULT_RECOVER_SAMPLES) -> ObservableStats:
    """Statistics of every window of ``run`` for one observable."""
    series = run.series.get(obs.name, [])
    anchor = run.anchor()
    bw = run.baseline()
    base = run.pooled(obs.name, ns(bw.start), ns(bw.end))[1] if bw else np.empty(0)
    band = band_of(base)
    rows: list[WindowStats] = []
    for w in run.record.windows:
        start, end = ns(w.start), ns(w.end)
        v = run.pooled(obs.name, start, end)[1]
        row = WindowStats(window=w.kind, stage=w.stage, start_s=(start - anchor) / 1e9, end_s=(end - anchor) / 1e9,
                          summary=summarize(v))
        if obs.slo is not None:
            row.slo_violations_per_min = slo_density(series, start, end, obs.slo)
        if w.kind != "baseline" and band is not None and v.size:
            row.anomaly_share = anomaly_share(v, band)
            if band.mean != 0 and row.summary.mean is not None:
                row.amplification = row.summary.mean / band.mean
            mw = mann_whitney(v, base)
            if mw is not None:
                row.mwu_u, row.mwu_p = mw
                row.cliffs_delta = cliffs_delta(mw[0], v.size, base.size)
        if w.kind == "recovery" and w.stage and band is not None and series:
            rb = stage_rollback(run, w.stage)
            if rb is not None:
                row.time_to_recover_s = time_to_recover(series, rb, end, band, recover_samples)
                row.recovered = row.time_to_recover_s is not None
        rows.append(row)
    return ObservableStats(observable=obs.name, unit=obs.unit, series=len(series), band=band, windows=rows)
