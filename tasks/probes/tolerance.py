"""Chaos-Toolkit-style tolerance checks, shared by every probe kind.

``value``: equality (numbers compared as numbers, so ``1 == 1.0``); ``range``: inclusive numeric bounds;
``regex``: ``re.search`` on the value's text; ``jsonpath`` (jsonpath2, what ``chaostoolkit-lib[jsonpath]``
brings): at least one match, and with ``expect`` every match must equal it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from jsonpath2.path import Path as JsonPath  # type: ignore[import-untyped]

from blueprints.probes import Tolerance
from tasks.errors import ProbeError


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected == actual or str(expected).lower() == str(actual).lower()
    a, b = _number(expected), _number(actual)
    if a is not None and b is not None:
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return str(expected) == str(actual)


def jsonpath_matches(expr: str, value: Any) -> list[Any]:
    """Every value ``expr`` selects in ``value`` (a JSON document or its text)."""
    doc = value
    if isinstance(value, str | bytes):
        try:
            doc = json.loads(value)
        except ValueError as e:
            raise ProbeError(f"jsonpath tolerance needs JSON, got {str(value)[:80]!r}") from e
    try:
        path = JsonPath.parse_str(expr)
    except ValueError as e:
        raise ProbeError(f"bad jsonpath {expr!r}: {e}") from e
    return [m.current_value for m in path.match(doc)]


def within(tol: Tolerance, value: Any) -> bool:
    """Whether ``value`` meets the tolerance."""
    if tol.value is not None:
        return _equal(tol.value, value)
    if tol.range is not None:
        num = _number(value)
        return num is not None and tol.range[0] <= num <= tol.range[1]
    if tol.regex is not None:
        return re.search(tol.regex, value if isinstance(value, str) else json.dumps(value, default=str)) is not None
    if tol.jsonpath is not None:
        matches = jsonpath_matches(tol.jsonpath, value)
        if not matches:
            return False
        return tol.expect is None or all(_equal(tol.expect, m) for m in matches)
    raise ProbeError("tolerance declares nothing to check")  # the model forbids this; fail closed anyway
