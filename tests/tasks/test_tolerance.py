"""Tolerance checks shared by every probe kind."""

from __future__ import annotations

import pytest

from blueprints.probes import Tolerance
from tasks.errors import ProbeError
from tasks.probes.tolerance import jsonpath_matches, within


def test_value_compares_numbers_as_numbers() -> None:
    """An exact numeric value matches 1 and 1.0 and '1', but not 2."""
    tol = Tolerance(value=1)
    assert within(tol, 1.0) and within(tol, "1") and not within(tol, 2)


def test_value_compares_strings_exactly() -> None:
    """A string value (an rcode) matches only itself."""
    tol = Tolerance(value="NOERROR")
    assert within(tol, "NOERROR") and not within(tol, "SERVFAIL")


def test_range_is_inclusive_and_rejects_non_numbers() -> None:
    """A range accepts its bounds, rejects values outside and non-numeric values."""
    tol = Tolerance(range=(200, 299))
    assert within(tol, 200) and within(tol, 299) and not within(tol, 300)
    assert not within(tol, "abc") and not within(tol, True)


def test_regex_searches_text() -> None:
    """A regex is searched in the value's text."""
    assert within(Tolerance(regex=r"ok\b"), "all ok here") and not within(Tolerance(regex="^ok"), "not ok")


def test_jsonpath_any_match_without_expect() -> None:
    """Without expect, a jsonpath tolerance needs at least one match."""
    doc = {"items": [{"status": "up"}, {"status": "down"}]}
    assert within(Tolerance(jsonpath="$.items[*].status"), doc)
    assert not within(Tolerance(jsonpath="$.missing"), doc)


def test_jsonpath_with_expect_needs_every_match_equal() -> None:
    """With expect, every match must equal it; JSON text is parsed first."""
    assert within(Tolerance(jsonpath="$.items[*].status", expect="up"), '{"items": [{"status": "up"}]}')
    assert not within(Tolerance(jsonpath="$.items[*].status", expect="up"),
                      {"items": [{"status": "up"}, {"status": "down"}]})


def test_jsonpath_on_non_json_text_cannot_be_evaluated() -> None:
    """A jsonpath tolerance over text that is not JSON raises ProbeError (fails closed)."""
    with pytest.raises(ProbeError):
        jsonpath_matches("$.a", "not json")
