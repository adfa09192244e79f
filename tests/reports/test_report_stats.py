"""reports.stats checked against independent computations (scipy, statsmodels, pandas) from frames files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.tsa.stattools import acf

from reports.frames import F64, Series, load_run
from reports.stats import (
    DEFAULT_RECOVER_SAMPLES,
    anomaly_share,
    band_of,
    cliffs_delta,
    effective_n,
    first_stable,
    lag1_autocorrelation,
    mann_whitney,
    mwu_p_adjusted,
    mwu_z,
    no_measurable_effect,
    observable_stats,
    p99_amplification,
    summarize,
)
from tests.reports.helpers import raw_samples


def _ar1(rng: np.random.Generator, n: int, phi: float) -> F64:
    """A stationary AR(1) series x_t = φ·x_{t−1} + ε_t, ε standard normal (x_0 from the stationary law)."""
    e = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = e[0] / math.sqrt(1 - phi**2)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x


def _rho(x: F64) -> float:
    """ρ by the definition: statsmodels' lag-1 acf clipped to [0, 0.99]; 0 for < 3 samples or no variance."""
    if x.size < 3 or np.ptp(x) == 0:
        return 0.0
    return float(np.clip(acf(x, nlags=1)[1], 0.0, 0.99))


def _n_eff(groups: list[F64]) -> float:
    """Σ n·(1−ρ)/(1+ρ) over the series."""
    return sum(x.size * (1 - _rho(x)) / (1 + _rho(x)) for x in groups)


def _p_adjusted(a: F64, b: F64, e1: float, e2: float) -> float:
    """z of scipy's U by hand (tie-corrected variance, continuity ½) rescaled to sizes e1, e2; two-sided p."""
    u = sps.mannwhitneyu(a, b, alternative="two-sided").statistic
    n1, n2 = a.size, b.size
    n = n1 + n2
    _, t = np.unique(np.concatenate([a, b]), return_counts=True)
    var = n1 * n2 / 12 * ((n + 1) - float(((t**3) - t).sum()) / (n * (n - 1)))
    z = max(abs(u - n1 * n2 / 2) - 0.5, 0.0) / math.sqrt(var) if var > 0 else 0.0  # all tied: no evidence
    z_eff = z * math.sqrt(((n1 + n2 + 1) / (n1 * n2)) / ((e1 + e2 + 1) / (e1 * e2)))
    return float(2 * sps.norm.sf(z_eff))


def _by_series(df: pd.DataFrame) -> list[F64]:
    """The values of each series of raw samples, in time order."""
    groups = df.sort_values("timestamp").groupby("series", dropna=False)
    return [g["value"].to_numpy(dtype=float) for _, g in groups]


def _independent_ttr(run_dir: Path, obs: str, rollback: pd.Timestamp, end: pd.Timestamp, low: float, high: float,
                     k: int) -> float | None:
    df = raw_samples(run_dir, obs, rollback, end)
    worst = rollback
    for _, g in df.sort_values("timestamp").groupby("series"):
        inside = ((g["value"] >= low) & (g["value"] <= high)).astype(int).reset_index(drop=True)
        full = inside.rolling(k).sum() == k
        if not full.any():
            return None
        first = int(np.flatnonzero(full.to_numpy())[0]) - k + 1
        worst = max(worst, g["timestamp"].iloc[first])
    return (worst - rollback).total_seconds()


def test_every_window_statistic_matches_scipy(any_run: Path) -> None:
    """Percentiles, mean, n_eff, Mann–Whitney U/p/corrected p, Cliff's δ, p99 amplification, anomaly share,
    SLO density and recovery time all match independent computations."""
    run = load_run(any_run)
    assert run.campaign is not None
    bw = run.baseline()
    assert bw is not None
    checked = 0
    for obs in run.campaign.observables:
        st = observable_stats(run, obs)
        base_df = raw_samples(any_run, obs.name, pd.Timestamp(bw.start), pd.Timestamp(bw.end))
        base = base_df["value"].to_numpy()
        base_n_eff = _n_eff(_by_series(base_df))
        for w, row in zip(run.record.windows, st.windows, strict=True):
            df = raw_samples(any_run, obs.name, pd.Timestamp(w.start), pd.Timestamp(w.end))
            v = df["value"].to_numpy()
            assert row.summary.n == v.size
            if v.size == 0:
                continue
            checked += 1
            n_eff = _n_eff(_by_series(df))
            assert row.n_eff == pytest.approx(n_eff, rel=1e-9)
            assert row.summary.mean == pytest.approx(sps.tmean(v), rel=1e-9)
            for q, got in zip((50, 95, 99), (row.summary.p50, row.summary.p95, row.summary.p99), strict=True):
                assert got == pytest.approx(sps.scoreatpercentile(v, q), rel=1e-9)
            if obs.slo is not None:
                op, limit = obs.slo
                ok = {"<=": v <= limit, "<": v < limit, ">=": v >= limit, ">": v > limit}[op]
                bad_instants = df.loc[~ok, "timestamp"].nunique()
                minutes = (w.end - w.start).total_seconds() / 60
                assert row.slo_violations_per_min == pytest.approx(bad_instants / minutes)
            if w.kind == "baseline" or base.size == 0:
                continue
            ref = sps.mannwhitneyu(v, base, alternative="two-sided")
            assert row.mwu_u == pytest.approx(ref.statistic)
            assert row.mwu_p == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)
            assert row.baseline_n_eff == pytest.approx(base_n_eff, rel=1e-9)
            if min(n_eff, base_n_eff) >= 2:
                assert row.mwu_p_adjusted == pytest.approx(_p_adjusted(v, base, n_eff, base_n_eff), rel=1e-9,
                                                           abs=1e-300)
            else:
                assert row.mwu_p_adjusted is None
            b99 = np.percentile(base, 99)
            assert row.p99_amplification == (pytest.approx(np.percentile(v, 99) / b99) if b99 != 0 else None)
            sb = np.sort(base)
            greater = np.searchsorted(sb, v, side="left").sum()
            less = (base.size - np.searchsorted(sb, v, side="right")).sum()
            assert row.cliffs_delta == pytest.approx((greater - less) / (v.size * base.size), abs=1e-12)
            mean, sd = base.mean(), base.std()
            tol = max(3 * sd, 0.01 * abs(mean), 1e-9)
            outside = np.mean((v < mean - tol) | (v > mean + tol))
            assert row.anomaly_share == pytest.approx(outside, abs=1.5 / v.size)
            if mean != 0:
                assert row.amplification == pytest.approx(v.mean() / mean)
            if w.kind == "recovery" and st.band is not None:
                stage = next(s for s in run.record.stages if s.name == w.stage)
                rb = pd.Timestamp(max(f.rolled_back_at for f in stage.faults if f.rolled_back_at))
                ttr = _independent_ttr(any_run, obs.name, rb, pd.Timestamp(w.end), st.band.low, st.band.high,
                                       DEFAULT_RECOVER_SAMPLES)
                assert row.time_to_recover_s == (pytest.approx(ttr) if ttr is not None else None)
                assert row.recovered is (ttr is not None)
    assert checked > 0


def test_summary_of_nothing_is_empty() -> None:
    """An empty window has n=0 and no statistics (never a crash or a NaN)."""
    s = summarize(np.empty(0))
    assert s.n == 0 and s.mean is None and s.p99 is None


def test_cliffs_delta_extremes() -> None:
    """Cliff's delta from U is +1 when every fault sample is larger and -1 when every one is smaller."""
    a, b = np.array([5.0, 6.0, 7.0]), np.array([1.0, 2.0])
    u = sps.mannwhitneyu(a, b).statistic
    assert cliffs_delta(u, 3, 2) == 1.0
    assert cliffs_delta(sps.mannwhitneyu(b, a).statistic, 2, 3) == -1.0


def test_first_stable_needs_consecutive_samples_inside() -> None:
    """Recovery is the first run of k samples inside the band, not the first single sample."""
    band = band_of(np.array([1.0, 1.0, 1.0]))
    assert band is not None
    v = np.array([5.0, 1.0, 5.0, 1.0, 1.0, 1.0, 1.0])
    t = np.arange(v.size, dtype=np.int64) * 1_000_000_000
    assert first_stable(t, v, band, 3) == 3_000_000_000
    assert first_stable(t, v, band, 5) is None


def test_effective_n_of_ar1_and_white_noise() -> None:
    """n_eff of AR(1) with φ=0.8 is near n(1−φ)/(1+φ), of white noise near n, and ρ is acf's lag-1 value."""
    n, phi = 2000, 0.8
    rng = np.random.default_rng(0)
    x = _ar1(rng, n, phi)
    rho = lag1_autocorrelation(x)
    assert rho == pytest.approx(acf(x, nlags=1, fft=False)[1], abs=1e-12)
    assert rho == pytest.approx(np.corrcoef(x[:-1], x[1:])[0, 1], abs=0.01)
    assert effective_n([x]) == pytest.approx(n * (1 - rho) / (1 + rho), rel=1e-12)
    # ρ̂'s standard error is about sqrt((1−φ²)/n) ≈ 0.013, i.e. ~7.5 % on n_eff: 15 % is two of them.
    assert effective_n([x]) == pytest.approx(n * (1 - phi) / (1 + phi), rel=0.15)
    w = rng.standard_normal(n)
    # Under white noise ρ̂ has standard error 1/√n; within 3 of them n_eff ≥ n(1−c)/(1+c), c = 3/√n.
    c = 3 / math.sqrt(n)
    assert n * (1 - c) / (1 + c) <= effective_n([w]) <= n
    assert effective_n([x, w]) == pytest.approx(effective_n([x]) + effective_n([w]))


def test_effective_n_counts_short_and_constant_series_whole() -> None:
    """A series under 3 samples or without variance counts with ρ=0, i.e. all its samples."""
    assert effective_n([np.array([1.0, 5.0]), np.full(50, 1.0), np.empty(0)]) == 52.0
    assert lag1_autocorrelation(np.full(10, 3.0)) == 0.0


def test_adjusted_p_of_autocorrelated_shift_matches_hand_computation() -> None:
    """With AR(1) samples and a small shift the corrected p exceeds the raw p and matches a hand-made one."""
    rng = np.random.default_rng(1)
    a = np.round(_ar1(rng, 500, 0.8) + 0.5, 1)  # rounding makes ties, so the tie correction matters
    b = np.round(_ar1(rng, 500, 0.8), 1)
    mw = mann_whitney(a, b)
    assert mw is not None
    u, raw = mw
    e1, e2 = effective_n([a]), effective_n([b])
    assert e1 == pytest.approx(_n_eff([a]), rel=1e-12) and e2 == pytest.approx(_n_eff([b]), rel=1e-12)
    got = mwu_p_adjusted(mwu_z(u, a, b), a.size, b.size, e1, e2)
    assert got is not None
    assert got == pytest.approx(_p_adjusted(a, b, e1, e2), rel=1e-9)
    assert got > 10 * raw
    assert mwu_p_adjusted(mwu_z(u, a, b), a.size, b.size, 1.5, e2) is None


def test_adjusted_p_of_white_noise_is_close_to_raw() -> None:
    """Without autocorrelation the corrected z is within the 3-standard-error bound on ρ̂ of the raw one."""
    n = 2000
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(n) + 0.1, rng.standard_normal(n)
    mw = mann_whitney(a, b)
    assert mw is not None
    got = mwu_p_adjusted(mwu_z(mw[0], a, b), n, n, effective_n([a]), effective_n([b]))
    assert got is not None
    # scipy's p here is its asymptotic one (n > 8), so the corrected p is never smaller.
    z_raw, z_adj = sps.norm.isf(mw[1] / 2), sps.norm.isf(got / 2)
    assert got >= mw[1] * (1 - 1e-9)
    # Both effective sizes ≥ f·n with f = (1−c)/(1+c), c = 3/√n, so z shrinks by at most the factor below.
    c = 3 / math.sqrt(n)
    f = (1 - c) / (1 + c)
    e = f * n
    floor = math.sqrt(((2 * n + 1) / n**2) / ((2 * e + 1) / e**2))
    assert floor * z_raw <= z_adj <= z_raw * (1 + 1e-9)


def test_adjusted_p_holds_its_level_on_autocorrelated_noise() -> None:
    """Over 200 unshifted pairs of independent AR(1) series raw p < 0.05 is common, corrected p < .05 rare."""
    rng = np.random.default_rng(0)
    raw = adjusted = 0
    pairs, n = 200, 300
    for _ in range(pairs):
        a, b = _ar1(rng, n, 0.8), _ar1(rng, n, 0.8)
        mw = mann_whitney(a, b)
        assert mw is not None
        p = mwu_p_adjusted(mwu_z(mw[0], a, b), n, n, effective_n([a]), effective_n([b]))
        assert p is not None
        raw += mw[1] < 0.05
        adjusted += p < 0.05
    # Rank autocorrelation ≈ φ inflates var(U) ~(1+φ)/(1−φ) = 9-fold: raw rejects ~P(|Z| > 1.96/3) ≈ 50 %.
    assert raw / pairs > 0.3
    assert adjusted / pairs < 0.12


def test_p99_amplification_against_numpy() -> None:
    """p99 amplification is the ratio of numpy's p99s, and None on a zero baseline p99 or without samples."""
    rng = np.random.default_rng(3)
    fault, base = rng.lognormal(1.0, 0.5, 400), rng.lognormal(0.0, 0.5, 900)
    assert p99_amplification(fault, base) == pytest.approx(np.percentile(fault, 99) / np.percentile(base, 99))
    assert p99_amplification(fault, np.zeros(100)) is None
    assert p99_amplification(np.empty(0), base) is None
    assert p99_amplification(fault, np.empty(0)) is None


def test_band_floor_on_a_constant_baseline() -> None:
    """A baseline of exactly 1.0 gets a ±1 % band: 0.999 is no anomaly, 0.5 is; a noisy baseline keeps ±3σ."""
    band = band_of(np.full(120, 1.0))
    assert band is not None
    assert (band.low, band.high) == (pytest.approx(0.99), pytest.approx(1.01))
    assert anomaly_share(np.full(60, 0.999), band) == 0.0
    assert anomaly_share(np.full(60, 0.5), band) == 1.0
    noisy = np.random.default_rng(4).normal(100.0, 5.0, 500)
    wide = band_of(noisy)
    assert wide is not None
    assert wide.low == pytest.approx(noisy.mean() - 3 * noisy.std())
    zero = band_of(np.zeros(10))
    assert zero is not None and zero.high == pytest.approx(1e-9)


def test_no_measurable_effect(synthetic: dict[str, Path]) -> None:
    """An observable that ignores the fault has no measurable effect; gpu_util's drop or a large δ has one."""
    run = load_run(synthetic["confirmed"])
    obs = next(o for o in run.observables() if o.name == "gpu_util")
    shifted = observable_stats(run, obs)
    assert not no_measurable_effect(shifted.windows)
    assert not no_measurable_effect([w for w in shifted.windows if w.window != "fault"])
    t = run.series[obs.name][0].t
    rng = np.random.default_rng(5)
    for values in (np.full(t.size, 1.0), rng.normal(0.85, 0.03, (3, t.size))):
        run.series[obs.name] = [Series(f"s{i}", t, np.asarray(v, dtype=np.float64))
                                for i, v in enumerate(np.atleast_2d(values))]
        same = observable_stats(run, obs)
        faults = [w for w in same.windows if w.window == "fault"]
        assert faults and all(w.mwu_p_adjusted is not None and w.cliffs_delta is not None for w in faults)
        assert no_measurable_effect(same.windows)
        assert not no_measurable_effect(same.windows, alpha=1.01)
    # A non-significant p does not make a non-negligible Cliff's delta disappear (nor does a missing p).
    big = faults[0].model_copy(update={"mwu_p_adjusted": None, "cliffs_delta": -0.2})
    assert not no_measurable_effect([big])
    assert not no_measurable_effect([big.model_copy(update={"mwu_p_adjusted": 0.9})])
    assert no_measurable_effect([big.model_copy(update={"cliffs_delta": 0.1})])
