"""flows/search.py: bisecting an intensity for where the hypothesis breaks, with a stub run function."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.search import SearchError, bisect_limit, read_verdict, yaml_number


def threshold(limit: float, calls: list[float]) -> object:
    """A stub campaign: refuted at or above ``limit``, confirmed below; remembers every value tried."""

    def run(value: float) -> str:
        calls.append(value)
        return "refuted" if value >= limit else "confirmed"

    return run


def test_bisection_brackets_the_limit_within_the_resolution() -> None:
    """The result brackets the true limit within the resolution, in about log2(range/resolution) probes."""
    calls: list[float] = []
    result = bisect_limit(threshold(37.3, calls), 10, 100, 1)  # type: ignore[arg-type]
    assert result.last_safe is not None and result.first_broken is not None
    assert result.last_safe < 37.3 <= result.first_broken
    assert result.first_broken - result.last_safe <= 1
    assert calls[:2] == [10, 100] and len(calls) <= 2 + 7
    assert result.margin == result.last_safe / 10
    assert "safety margin" in result.summary()


def test_integer_ranges_probe_only_integers() -> None:
    """With integer ends and resolution every probe is an integer (for int parameters like counts)."""
    calls: list[float] = []
    result = bisect_limit(threshold(7, calls), 1, 20, 1)  # type: ignore[arg-type]
    assert all(float(c).is_integer() for c in calls)
    assert (result.last_safe, result.first_broken) == (6, 7)


def test_ends_decide_when_the_limit_is_outside_the_range() -> None:
    """Broken at --from: no margin; holding at --to: no limit found; only the ends are probed."""
    low: list[float] = []
    assert bisect_limit(threshold(0, low), 5, 50, 1).first_broken == 5 and low == [5]  # type: ignore[arg-type]
    high: list[float] = []
    res = bisect_limit(threshold(1000, high), 5, 50, 1)  # type: ignore[arg-type]
    assert (res.last_safe, res.first_broken, high) == (50, None, [5, 50])
    assert "no limit found" in res.summary()


def test_an_aborted_probe_counts_as_broken_and_inconclusive_stops() -> None:
    """A guardrail abort counts as broken; an inconclusive verdict stops the search and lists the probes."""
    assert bisect_limit(lambda v: "aborted" if v > 3 else "confirmed", 0, 8, 1).first_broken == 4
    with pytest.raises(SearchError, match="inconclusive.*probes: 1: confirmed"):
        bisect_limit(lambda v: "inconclusive" if v > 1 else "confirmed", 1, 9, 1)
    with pytest.raises(SearchError, match="below"):
        bisect_limit(lambda v: "confirmed", 5, 5, 1)


def test_read_verdict_prefers_abort_then_report(tmp_path: Path) -> None:
    """A run aborted by a guardrail reads 'aborted'; otherwise the report's overall verdict is used."""
    (tmp_path / "record.json").write_text(json.dumps({"status": "completed"}))
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "results.json").write_text(json.dumps({"overall": {"verdict": "refuted"}}))
    assert read_verdict(tmp_path) == "refuted"
    (tmp_path / "record.json").write_text(json.dumps({"status": "aborted"}))
    assert read_verdict(tmp_path) == "aborted"


def test_yaml_number_round_trips() -> None:
    """Override values are written so YAML reads back the same number (no exponent for large integers)."""
    import yaml

    for v in (1_000_000.0, 2.5, 0.125, 3.0):
        assert yaml.safe_load(yaml_number(v)) == v
