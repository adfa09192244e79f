"""Baseline-versus-fault statistics for one observable, computed over every sample (never the display copy).

Samples of all series of an observable are pooled for the summary statistics, the Mann–Whitney U test and
Cliff's delta. Scrape samples are not independent (1 s samples of rates over 5–15 s windows), so beside the
raw Mann–Whitney p each window carries an autocorrelation-corrected one: the test's normal approximation with
each sample's size replaced by its effective size, Σ over series of n·(1−ρ)/(1+ρ) with ρ the series' lag-1
autocorrelation. The p99 amplification is the window's p99 over the baseline's. The baseline band is
mean ± max(3σ, 1 % of |mean|, 1e-9) of the pooled baseline; the anomaly share is the fraction of a window's
samples outside it. SLO violation density counts instants (scrape timestamps) at which any series violates
the observable's SLO, per minute of window. Time to recover is the worst series' first time after rollback
from which it stays inside the band for ``recover_samples`` consecutive samples (None: never). A fault with
no measurable effect leaves every fault window indistinguishable from the baseline: corrected p ≥ α and a
negligible Cliff's delta.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy import stats as sps
from statsmodels.tsa.stattools import acf  # type: ignore[import-untyped]

from blueprints.campaign import Observable
from reports.frames import F64, Run, Series, ns

OPS: dict[str, Callable[[F64, float], np.ndarray]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
}
DEFAULT_RECOVER_SAMPLES = 10
MAX_RHO = 0.99
"""Lag-1 autocorrelations are clipped to [0, MAX_RHO]: a series counts as at least 1/199 of its size."""
NEGLIGIBLE_DELTA = 0.147
"""|Cliff's delta| below this is a negligible effect (Romano et al., 2006)."""
BAND_REL_FLOOR = 0.01
"""The baseline band is never narrower than ± this fraction of the baseline mean (see band_of)."""


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
    """The baseline band: mean ± max(3σ, 1 % of |mean|, 1e-9) of the pooled baseline samples."""

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
    """Window mean / baseline mean."""
    p99_amplification: float | None = None
    """Window p99 / baseline p99 (None when the baseline p99 is 0)."""
    n_eff: float | None = None
    """Effective sample size of the window's pooled samples (effective_n)."""
    baseline_n_eff: float | None = None
    """Effective sample size of the baseline's pooled samples (effective_n)."""
    mwu_u: float | None = None
    """Mann–Whitney U of the window's samples against the baseline's."""
    mwu_p: float | None = None
    """Raw two-sided Mann–Whitney p (scipy), treating every sample as independent: overstates significance."""
    mwu_p_adjusted: float | None = None
    """Two-sided Mann–Whitney p with the sizes replaced by n_eff/baseline_n_eff (mwu_p_adjusted)."""
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


def lag1_autocorrelation(x: F64) -> float:
    """ρ: statsmodels' lag-1 ``acf`` of ``x`` clipped to [0, MAX_RHO]; 0 if under 3 samples or constant."""
    if x.size < 3 or bool(np.all(x == x[0])):
        return 0.0
    rho = float(acf(x, nlags=1, fft=True)[1])
    return min(max(rho, 0.0), MAX_RHO) if math.isfinite(rho) else 0.0


def effective_n(series: list[F64]) -> float:
    """Effective size of pooled samples: Σ over series of n_s·(1−ρ_s)/(1+ρ_s), ρ_s = lag1_autocorrelation.

    ``n·(1−ρ)/(1+ρ)`` is the number of independent samples whose mean has the variance of the mean of ``n``
    samples of an AR(1) process with lag-1 autocorrelation ρ; series are taken as independent of each other.
    """
    total = 0.0
    for x in series:
        rho = lag1_autocorrelation(x)
        total += x.size * (1.0 - rho) / (1.0 + rho)
    return total


def window_series(series: list[Series], start: int, end: int) -> list[F64]:
    """The values of each series in ``[start, end)``, one array per series that has samples there."""
    parts = [s.between(start, end)[1] for s in series]
    return [v for v in parts if v.size]


def mwu_z(u: float, fault: F64, baseline: F64) -> float:
    """The normal-approximation z ≥ 0 of Mann–Whitney's U (of ``fault``), as in scipy's asymptotic test.

    z = max(|U − n1·n2/2| − ½, 0) / σ with the tie-corrected σ² = n1·n2·(n+1)/12 · (1 − Σ(t³−t)/(n³−n)),
    n = n1 + n2, t the sizes of groups of tied values (``scipy.stats.tiecorrect``); ½ is scipy's continuity
    correction. 0 when σ is 0 (every value tied).
    """
    n1, n2 = fault.size, baseline.size
    n = n1 + n2
    var = n1 * n2 * (n + 1) / 12.0 * float(sps.tiecorrect(sps.rankdata(np.concatenate([fault, baseline]))))
    if var <= 0:
        return 0.0
    return max(abs(u - n1 * n2 / 2.0) - 0.5, 0.0) / math.sqrt(var)


def mwu_p_adjusted(z: float, n_fault: int, n_baseline: int, fault_n_eff: float, baseline_n_eff: float
                   ) -> float | None:
    """Two-sided p of Mann–Whitney's z corrected for autocorrelation; None if an effective size is below 2.

    U's variance is n1·n2·(n1+n2+1)/12, so z measured in units of U's standard deviation rescales to what it
    would be with sizes e1, e2 as z_eff = z·sqrt(((n1+n2+1)/(n1·n2)) / ((e1+e2+1)/(e1·e2))); then
    p = 2·(1 − Φ(|z_eff|)) (computed as 2·Φ̄ for precision). With e = n (no autocorrelation) this is scipy's
    asymptotic p, and as effective_n never exceeds n it is never below that (the raw ``mwu_p`` is scipy's exact
    p, which may be larger, when a sample has 8 values or fewer and there are no ties).
    """
    e1, e2 = fault_n_eff, baseline_n_eff
    if e1 < 2 or e2 < 2 or n_fault < 1 or n_baseline < 1:
        return None
    ratio = ((n_fault + n_baseline + 1) / (n_fault * n_baseline)) / ((e1 + e2 + 1) / (e1 * e2))
    return min(1.0, float(2.0 * sps.norm.sf(abs(z) * math.sqrt(ratio))))


def p99_amplification(fault: F64, baseline: F64) -> float | None:
    """p99 of ``fault`` / p99 of ``baseline`` (linear interpolation); None if either is empty or p99 is 0."""
    if fault.size == 0 or baseline.size == 0:
        return None
    base = float(np.percentile(baseline, 99))
    return float(np.percentile(fault, 99)) / base if base != 0 else None


def cliffs_delta(u: float, n_fault: int, n_baseline: int) -> float:
    """Cliff's delta P(X>Y) − P(X<Y) from the Mann–Whitney U of X (ties count half)."""
    return 2.0 * u / (n_fault * n_baseline) - 1.0


def band_of(baseline: F64) -> Band | None:
    """The baseline band, mean ± max(3σ, 1 % of |mean|, 1e-9), or None without baseline samples.

    The floor matters when the baseline barely varies: a success ratio of exactly 1.0 throughout has σ = 0,
    and a ±3σ band would flag every fault sample that differs by any rounding as an anomaly.
    """
    if baseline.size == 0:
        return None
    mean, std = float(baseline.mean()), float(baseline.std())
    tol = max(3.0 * std, BAND_REL_FLOOR * abs(mean), 1e-9)
    return Band(mean=mean, std=std, low=mean - tol, high=mean + tol)


def anomaly_share(v: F64, band: Band) -> float | None:
    """Fraction of ``v`` outside the baseline band."""
    if v.size == 0:
        return None
    return float(np.count_nonzero((v < band.low) | (v > band.high)) / v.size)


def no_measurable_effect(windows: list[WindowStats], alpha: float = 0.05) -> bool:
    """Whether each fault window is indistinguishable from baseline: p_adjusted ≥ α (or None), |δ| < 0.147."""
    faults = [w for w in windows if w.window == "fault"]
    return bool(faults) and all(
        w.cliffs_delta is not None and abs(w.cliffs_delta) < NEGLIGIBLE_DELTA
        and (w.mwu_p_adjusted is None or w.mwu_p_adjusted >= alpha) for w in faults)


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
    base_n_eff = effective_n(window_series(series, ns(bw.start), ns(bw.end))) if bw else 0.0
    band = band_of(base)
    rows: list[WindowStats] = []
    for w in run.record.windows:
        start, end = ns(w.start), ns(w.end)
        v = run.pooled(obs.name, start, end)[1]
        row = WindowStats(window=w.kind, stage=w.stage, start_s=(start - anchor) / 1e9, end_s=(end - anchor) / 1e9,
                          summary=summarize(v))
        n_eff = effective_n(window_series(series, start, end))
        if v.size:
            row.n_eff = n_eff
        if obs.slo is not None:
            row.slo_violations_per_min = slo_density(series, start, end, obs.slo)
        if w.kind != "baseline" and band is not None and v.size:
            row.anomaly_share = anomaly_share(v, band)
            if band.mean != 0 and row.summary.mean is not None:
                row.amplification = row.summary.mean / band.mean
            row.p99_amplification = p99_amplification(v, base)
            row.baseline_n_eff = base_n_eff
            mw = mann_whitney(v, base)
            if mw is not None:
                row.mwu_u, row.mwu_p = mw
                z = mwu_z(mw[0], v, base)
                row.mwu_p_adjusted = mwu_p_adjusted(z, v.size, base.size, n_eff, base_n_eff)
                row.cliffs_delta = cliffs_delta(mw[0], v.size, base.size)
        if w.kind == "recovery" and w.stage and band is not None and series:
            rb = stage_rollback(run, w.stage)
            if rb is not None:
                row.time_to_recover_s = time_to_recover(series, rb, end, band, recover_samples)
                row.recovered = row.time_to_recover_s is not None
        rows.append(row)
    return ObservableStats(observable=obs.name, unit=obs.unit, series=len(series), band=band, windows=rows)
