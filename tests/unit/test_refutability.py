"""blueprints.promql.query_shape and blueprints.refutability: what a query reads, and which expectations are weak."""

from __future__ import annotations

from pathlib import Path

import pytest

from blueprints import load
from blueprints.campaign import Observable
from blueprints.hypothesis import Expectation
from blueprints.promql import presence_queries, query_shape
from blueprints.refutability import expectation_warnings, weak_expectations

STOCK = sorted(Path(__file__).resolve().parents[2].glob("blueprints/*/*.yaml"))


def _warn(line: str, query: str, slo: tuple[str, float] | None = None) -> list[str]:
    obs = Observable.model_validate({"name": Expectation.model_validate(line).observable, "query": query,
                                     "slo": list(slo) if slo else None})
    return expectation_warnings(Expectation.model_validate(line), obs, "hypothesis.expectations[0]")


def test_shape_reads_the_metrics_of_each_alternative() -> None:
    """'a / b' needs both metrics, 'a or b' either, and a constant fallback adds no alternative."""
    assert query_shape("sum(rate(a_total[5s])) / sum(rate(b_total[5s]))").evidence == [frozenset({"a_total", "b_total"})]
    assert query_shape("max(a) or max(b)").evidence == [frozenset({"a"}), frozenset({"b"})]
    shape = query_shape("sum(rate(a_total[5s])) or vector(0)")
    assert shape.evidence == [frozenset({"a_total"})] and shape.constant_fallback
    assert query_shape("vector(1)").evidence is None


def test_shape_knows_ratios_rates_and_counters() -> None:
    """A share of one metric, a rate, a clamped denominator and a bare counter are recognised from the parse tree."""
    share = query_shape('sum(rate(req_total{code=~"2.."}[15s])) / sum(rate(req_total[15s]))')
    assert share.ratio_of_one_metric and share.non_negative and not share.clamped_denominator
    assert query_shape("sum(rate(a_total[5s])) / clamp_min(sum(rate(b_total[5s])), 1e-9)").clamped_denominator
    assert query_shape("sum(irate(a_total[5s]))").non_negative
    assert query_shape('max(gpu_actions_total{code="79"})').bare_counter == "gpu_actions_total"
    assert query_shape("sum(rate(gpu_actions_total[5s]))").bare_counter is None
    assert not query_shape("max(temperature_celsius)").non_negative


def test_presence_queries_count_every_metric_and_never_return_nothing() -> None:
    """Each metric read gets one presence query whose fallback makes 'no series' a 0, not a gap."""
    q = presence_queries(["sum(rate(a_total[5s])) / sum(rate(b_total[5s]))", "max(a_total)"])
    assert q == {"presence:a_total": "count(a_total) or vector(0)", "presence:b_total": "count(b_total) or vector(0)"}


@pytest.mark.parametrize(("line", "query", "needle"), [
    ("max(ok_ratio) >= 0.95 during fault", "sum(rate(r_total{c='2'}[5s])) / sum(rate(r_total[5s]))", "one sample"),
    ("min(lat) <= 0.5 within 30s after rollback", "max(lat_seconds)", "one sample"),
    ("reqs >= 0 during fault", "sum(rate(r_total[5s]))", "never below 0"),
    ("ok_ratio <= 1 during fault", "sum(rate(r_total{c='2'}[5s])) / sum(rate(r_total[5s]))", "never above 1"),
    ("max(reboots) >= 1 during fault", "max(actions_total{code='79'})", "lifetime total"),
    ("delta(reqs) >= 1 during fault", "sum(rate(r_total[5s]))", "needs a cumulative counter"),
    ("mean(errs) <= 1 during fault", "sum(rate(e_total[5s])) or vector(0)", "constant fallback"),
    ("mean(ok) >= 0.9 during fault", "sum(rate(a_total[5s])) / clamp_min(sum(rate(b_total[5s])), 1e-9)", "clamp_min"),
])
def test_each_weak_form_is_warned_with_its_path(line: str, query: str, needle: str) -> None:
    """Every weak form the issue names is warned about, with the expectation's path."""
    warnings = _warn(line, query)
    assert any(needle in w for w in warnings), warnings
    assert all(w.startswith("hypothesis.expectations[0]: ") for w in warnings)


@pytest.mark.parametrize(("line", "query"), [
    ("mean(ok_ratio) >= 0.99 during fault", "sum(rate(r_total{c='2'}[5s])) / sum(rate(r_total[5s]))"),
    ("min(ok_ratio) >= 0.99 within 30s after rollback", "sum(rate(r_total{c='2'}[5s])) / sum(rate(r_total[5s]))"),
    ("delta(reboots) >= 1 during fault", "sum(actions_total{code='79'})"),
    ("p99_amplification(lat) <= 1.8 during fault", "histogram_quantile(0.99, sum by (le) (rate(l_bucket[5s])))"),
    ("max(errs) <= 0.02 during fault", "sum(rate(e_total{cause='dns'}[5s])) / sum(rate(e_total[5s]))"),
])
def test_strong_forms_are_not_warned(line: str, query: str) -> None:
    """Expectations that a fault could refute get no warning."""
    assert _warn(line, query) == []


@pytest.mark.parametrize("path", STOCK, ids=[p.name for p in STOCK])
def test_stock_blueprints_have_no_refutability_warning(path: Path) -> None:
    """Every stock blueprint and replay states expectations its fault could refute (validate --strict passes)."""
    assert weak_expectations(load(path)) == []
