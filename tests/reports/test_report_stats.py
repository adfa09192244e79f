"""reports.stats checked against independent computations (scipy, pandas) straight from the frames file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from reports.frames import load_run
from reports.stats import (
    DEFAULT_RECOVER_SAMPLES,
    band_of,
    cliffs_delta,
    first_stable,
    observable_stats,
    summarize,
)
from tests.reports.helpers import raw_samples


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
    """Percentiles, mean, Mann–Whitney U/p, Cliff's delta, anomaly share, SLO density and recovery time all match."""
    run = load_run(any_run)
    assert run.campaign is not None
    bw = run.baseline()
    assert bw is not None
    checked = 0
    for obs in run.campaign.observables:
        st = observable_stats(run, obs)
        base = raw_samples(any_run, obs.name, pd.Timestamp(bw.start), pd.Timestamp(bw.end))["value"].to_numpy()
        for w, row in zip(run.record.windows, st.windows, strict=True):
            df = raw_samples(any_run, obs.name, pd.Timestamp(w.start), pd.Timestamp(w.end))
            v = df["value"].to_numpy()
            assert row.summary.n == v.size
            if v.size == 0:
                continue
            checked += 1
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
            sb = np.sort(base)
            greater = np.searchsorted(sb, v, side="left").sum()
            less = (base.size - np.searchsorted(sb, v, side="right")).sum()
            assert row.cliffs_delta == pytest.approx((greater - less) / (v.size * base.size), abs=1e-12)
            mean, sd = base.mean(), base.std()
            outside = np.mean((v < mean - 3 * sd) | (v > mean + 3 * sd))
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
