"""The arma band (tasks/bands.py) on seeded synthetic series: it spans what an autocorrelated process does next,
which the spread of its recent samples does not, and a shifted level leaves it."""

from __future__ import annotations

import random

from blueprints.probes import Band, Guardrail
from tasks.bands import arma_range, band_range


def _guardrail(**band: object) -> Guardrail:
    return Guardrail.model_validate({
        "name": "latency", "band": {"side": "both", **band},
        "probe": {"name": "latency", "type": "prometheus", "query": "q", "tolerance": {"range": [0, 1000]}}})


def _ar1(n: int, phi: float, seed: int, level: float = 50.0) -> list[float]:
    rng, x, out = random.Random(seed), 0.0, []
    for _ in range(n + 200):   # 200 steps of burn-in from the level
        x = phi * x + rng.gauss(0, 1)
        out.append(level + x)
    return out[200:]


def test_an_arma_band_spans_an_ar1_process_where_its_recent_spread_does_not() -> None:
    """From 300 samples of an AR(1) with φ 0.9 (σ 1/√(1-0.81) ≈ 2.29), the ARMA(1, 0) band at 0.999 is near its
    theoretical ±3.29σ ≈ ±7.5 and holds at least 99 % of the process's next 2,000 values; a k=3.29 sigma band from
    its last 20 samples is narrower than that and holds fewer of them."""
    process = _ar1(2300, 0.9, seed=11)
    baseline, after = process[:300], process[300:]
    low, high, mean, _ = arma_range([baseline], _guardrail(method="arma", order=(1, 0), min_samples=9))
    assert 0.75 * 15.1 <= high - low <= 1.3 * 15.1, (low, high)
    inside = sum(low <= v <= high for v in after) / len(after)
    assert inside >= 0.99, inside
    s_low, s_high, _, _ = band_range(baseline[-20:], _guardrail(k=3.29))
    assert s_high - s_low < high - low
    assert sum(s_low <= v <= s_high for v in after) / len(after) < inside


def test_a_shifted_level_leaves_the_arma_band_and_a_flat_baseline_keeps_its_floor() -> None:
    """The same process 15 higher (a fault) is mostly outside the band learnt before it; a baseline that never
    moved gives its value ± floor; several series give the union of their intervals."""
    guardrail = _guardrail(method="arma", order=(1, 1), floor=0.5)
    low, high, _, _ = arma_range([_ar1(300, 0.9, seed=3)], guardrail)
    shifted = _ar1(500, 0.9, seed=4, level=65.0)
    assert sum(v > high for v in shifted) / len(shifted) > 0.9
    assert arma_range([[7.0] * 20], guardrail)[:2] == (6.5, 7.5)
    one = arma_range([_ar1(300, 0.9, seed=3)], guardrail)
    both = arma_range([_ar1(300, 0.9, seed=3), [200.0] * 20], guardrail)
    assert both[0] == one[0] and both[1] == 200.5
    assert Band(method="arma").min_samples == 12
