"""Label selectors (=, ==, !=, in, notin, exists, !exists) and field selectors (=, ==, !=)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from lab.apiserver import errors

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_OP_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([^,=!()\s]*)\s*$")
# Field defaults when absent, as the real server's field label conversion reports them.
_FIELD_DEFAULTS = {"spec.unschedulable": "false"}


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    terms: list[str] = []
    depth = 0
    current = ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        terms.append(current)
    return [t for t in terms if t.strip()]


def _label_term(term: str) -> Predicate:
    match = _OP_RE.match(term)
    if match:
        key, op, value = match.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    match = _SET_RE.match(term)
    if not match:
        raise errors.bad_request(f"unable to parse requirement: {term!r}")
    neg, key, op, values = match.groups()
    if op is None:
        if neg:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    if neg:
        raise errors.bad_request(f"unable to parse requirement: {term!r}")
    options = {v.strip() for v in values.split(",") if v.strip()}
    if op == "in":
        return lambda labels: labels.get(key) in options
    return lambda labels: labels.get(key) not in options


def label_selector(text: str | None) -> Predicate | None:
    """Compile a label selector string into a predicate over objects (None: match all)."""
    if not text:
        return None
    preds = [_label_term(t) for t in _split_terms(text)]

    def match(obj: Obj) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(p(labels) for p in preds)

    return match


def field_value(obj: Obj, path: str) -> str:
    """The string value of a dotted field path, as field selectors compare it."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return _FIELD_DEFAULTS.get(path, "")
        cur = cur[part]
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return "" if cur is None else str(cur)


def field_selector(text: str | None) -> Predicate | None:
    """Compile a field selector (any dotted path; metadata.name, spec.nodeName, ...)."""
    if not text:
        return None
    terms: list[tuple[str, bool, str]] = []
    for term in _split_terms(text):
        match = _OP_RE.match(term)
        if not match:
            raise errors.bad_request(f"invalid field selector: {term!r}")
        key, op, value = match.groups()
        terms.append((key, op != "!=", value))

    def match_obj(obj: Obj) -> bool:
        return all((field_value(obj, k) == v) == eq for k, eq, v in terms)

    return match_obj


def combine(*preds: Predicate | None) -> Predicate | None:
    """AND several optional predicates."""
    real = [p for p in preds if p is not None]
    if not real:
        return None
    if len(real) == 1:
        return real[0]
    return lambda obj: all(p(obj) for p in real)


def field_equals(text: str | None, path: str) -> str | None:
    """If the field selector pins ``path`` to one value (e.g. metadata.name=x), return it."""
    if not text:
        return None
    for term in _split_terms(text):
        match = _OP_RE.match(term)
        if match and match.group(1) == path and match.group(2) != "!=":
            return match.group(3)
    return None


def from_query(query: Any) -> Predicate | None:
    """The combined labelSelector and fieldSelector of a LIST/WATCH query."""
    return combine(label_selector(query.get("labelSelector")), field_selector(query.get("fieldSelector")))
