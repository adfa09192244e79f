"""Offline PromQL syntax checking, so ``gameday validate`` catches a bad query without a Prometheus.

Uses ``promtool check rules`` (Debian's ``prometheus`` package) when it is installed: the real parser.
Without it, a light check of brackets and quotes catches the common mistakes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_RULE = re.compile(r'rule (\d+), "q\d+": could not parse expression: (.*)$')


def _balanced(expr: str) -> str | None:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    quote: str | None = None
    for ch in expr:
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "\"'`":
            quote = ch
        elif ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return f"parse error: unexpected {ch!r}"
    if quote:
        return "parse error: unterminated quoted string"
    if stack:
        return f"parse error: unclosed {stack[-1]!r}"
    return None


def check_promql(exprs: list[str]) -> list[str | None]:
    """One entry per expression: None when it parses, else the parser's message."""
    if not exprs:
        return []
    promtool = shutil.which("promtool")
    if promtool is None:
        return [_balanced(e) for e in exprs]
    rules = {"groups": [{"name": "gameday", "rules": [{"record": f"q{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "rules.yml"
        path.write_text(yaml.safe_dump(rules))
        proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=30)
    out: list[str | None] = [None] * len(exprs)
    for line in (proc.stdout + proc.stderr).splitlines():
        m = _RULE.search(line)
        if m:
            out[int(m.group(1)) - 1] = m.group(2)
    if proc.returncode != 0 and all(o is None for o in out):
        return [_balanced(e) for e in exprs]
    return out


# --- What a query reads: its metrics, and the shape that decides whether an expectation over it is evidence ---

Evidence = list[frozenset[str]]
"""Alternatives of metric sets: the query's value is evidence at an instant when every metric of one
alternative has a series then (``a or b`` reads ``a`` or ``b``; ``a / b`` needs both)."""

NON_NEGATIVE_FUNCS = frozenset({
    "rate", "irate", "increase", "count_over_time", "abs", "absent", "absent_over_time", "changes", "resets",
})
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")


@dataclass(frozen=True)
class QueryShape:
    """What a PromQL query reads and how it is built, from its parse tree (``promql-parser``)."""

    evidence: Evidence | None
    """None: the query reads no metric at all (a constant)."""
    constant_fallback: bool = False
    """``... or vector(0)`` (or any constant on the right of ``or``): a missing metric reads as that constant."""
    clamped_denominator: bool = False
    """``x / clamp_min(y, tiny)``: no traffic reads as a ratio of 0 instead of no sample."""
    non_negative: bool = False
    """The outermost value is a count, rate or increase: it can never be below 0."""
    ratio_of_one_metric: bool = False
    """``sum(m{filter}) / sum(m)`` of rates of one metric: a share, never above 1."""
    bare_counter: str | None = None
    """The metric, when the query is a cumulative counter read as it is (no rate/increase/delta around it)."""

    @property
    def metrics(self) -> list[str]:
        """Every metric the query reads, sorted."""
        return sorted(set().union(*self.evidence)) if self.evidence else []


def _metric(sel: Any) -> str:
    name = getattr(sel, "name", None)
    return str(name) if name else str(sel)


def _and(a: Evidence | None, b: Evidence | None) -> Evidence | None:
    if a is None:
        return b
    if b is None:
        return a
    return [x | y for x in a for y in b]


def _evidence(node: Any) -> Evidence | None:
    import promql_parser as pp

    if isinstance(node, pp.VectorSelector):
        return [frozenset({_metric(node)})]
    if isinstance(node, pp.MatrixSelector):
        return _evidence(node.vector_selector)
    if isinstance(node, pp.BinaryExpr):
        op = str(node.op)
        lhs, rhs = _evidence(node.lhs), _evidence(node.rhs)
        if op == "or":
            if lhs is None or rhs is None:
                return lhs if rhs is None else rhs
            return list(dict.fromkeys(lhs + rhs))
        if op == "unless":
            return lhs
        return _and(lhs, rhs)
    if isinstance(node, pp.Call):
        if node.func.name in ("absent", "absent_over_time", "vector", "time", "pi"):
            return None
        out: Evidence | None = None
        for arg in node.args:
            out = _and(out, _evidence(arg))
        return out
    for attr in ("expr",):
        inner = getattr(node, attr, None)
        if inner is not None:
            return _evidence(inner)
    return None


def _strip(node: Any) -> Any:
    import promql_parser as pp

    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return node


def _constant_fallback(node: Any) -> bool:
    import promql_parser as pp

    hit = False

    def visit(n: Any) -> None:
        nonlocal hit
        if isinstance(n, pp.BinaryExpr) and str(n.op) == "or" and _evidence(n.rhs) is None:
            hit = True

    pp.walk(node, visit)
    return hit


def _clamped_denominator(node: Any) -> bool:
    import promql_parser as pp

    hit = False

    def visit(n: Any) -> None:
        nonlocal hit
        if isinstance(n, pp.BinaryExpr) and str(n.op) == "/":
            rhs = _strip(n.rhs)
            if isinstance(rhs, pp.Call) and rhs.func.name == "clamp_min" and len(rhs.args) == 2:
                floor = _strip(rhs.args[1])
                if isinstance(floor, pp.NumberLiteral) and 0 <= float(floor.val) < 1:
                    hit = True

    pp.walk(node, visit)
    return hit


def _non_negative(node: Any) -> bool:
    import promql_parser as pp

    node = _strip(node)
    if isinstance(node, pp.AggregateExpr):
        op = str(node.op)
        if op in ("count", "count_values"):
            return True
        return op in ("sum", "max", "min", "avg", "topk", "bottomk", "quantile") and _non_negative(node.expr)
    if isinstance(node, pp.BinaryExpr) and str(node.op) in ("/", "*", "+", "or"):
        return all(_non_negative(side) or (isinstance(_strip(side), pp.NumberLiteral) and float(_strip(side).val) >= 0)
                   for side in (node.lhs, node.rhs))
    if isinstance(node, pp.Call):
        if node.func.name == "clamp_min" and len(node.args) == 2:
            return _non_negative(node.args[0]) or (
                isinstance(_strip(node.args[1]), pp.NumberLiteral) and float(_strip(node.args[1]).val) >= 0)
        return node.func.name in NON_NEGATIVE_FUNCS or (
            node.func.name in ("clamp_min",) and len(node.args) == 2
            and isinstance(_strip(node.args[1]), pp.NumberLiteral) and float(_strip(node.args[1]).val) >= 0
        )
    return False


def _rate_metric(node: Any) -> tuple[str, frozenset[str]] | None:
    """For ``sum(rate(m{...}[w]))``-like nodes: the metric and its matchers (as text)."""
    import promql_parser as pp

    node = _strip(node)
    if isinstance(node, pp.AggregateExpr) and str(node.op) == "sum":
        node = _strip(node.expr)
    if isinstance(node, pp.Call) and node.func.name in ("rate", "irate", "increase") and node.args:
        found: list[Any] = []
        pp.walk(node.args[0], lambda n: found.append(n) if isinstance(n, pp.VectorSelector) else None)
        if len(found) == 1 and getattr(found[0], "name", None):
            matchers = frozenset(str(m) for m in found[0].matchers.matchers)
            return str(found[0].name), matchers
    return None


def _ratio_of_one_metric(node: Any) -> bool:
    import promql_parser as pp

    node = _strip(node)
    if not (isinstance(node, pp.BinaryExpr) and str(node.op) == "/"):
        return False
    rhs = _strip(node.rhs)
    if isinstance(rhs, pp.Call) and rhs.func.name == "clamp_min" and rhs.args:
        rhs = rhs.args[0]
    num, den = _rate_metric(node.lhs), _rate_metric(rhs)
    return num is not None and den is not None and num[0] == den[0] and den[1] <= num[1]


def _bare_counter(node: Any) -> str | None:
    import promql_parser as pp

    node = _strip(node)
    while isinstance(node, pp.AggregateExpr) and str(node.op) in ("sum", "max", "min", "avg"):
        node = _strip(node.expr)
    while isinstance(node, pp.BinaryExpr) and str(node.op) in ("/", "*") and _evidence(node.rhs) is None:
        node = _strip(node.lhs)
    if isinstance(node, pp.VectorSelector):
        name = _metric(node)
        if name.endswith(COUNTER_SUFFIXES):
            return name
    return None


def query_shape(query: str) -> QueryShape:
    """Parse ``query`` with promql-parser and describe what it reads; ValueError if it does not parse."""
    import promql_parser as pp

    try:
        tree = pp.parse(query)
    except ValueError as e:
        raise ValueError(f"cannot parse PromQL: {e}") from e
    lhs = tree
    fallback = _constant_fallback(tree)
    if fallback:
        while isinstance(_strip(lhs), pp.BinaryExpr) and str(_strip(lhs).op) == "or":
            lhs = _strip(lhs).lhs
    return QueryShape(
        evidence=_evidence(tree),
        constant_fallback=fallback,
        clamped_denominator=_clamped_denominator(tree),
        non_negative=_non_negative(lhs),
        ratio_of_one_metric=_ratio_of_one_metric(lhs),
        bare_counter=_bare_counter(lhs),
    )


def presence_query(metric: str) -> str:
    """The PromQL that counts a metric's series at each instant: 0 (never missing) when it had none."""
    return f"count({metric}) or vector(0)"


PRESENCE_PREFIX = "presence:"
"""Frames rows of ``presence:<metric>`` hold :func:`presence_query`: when the metric had series."""


def presence_queries(queries: list[str]) -> dict[str, str]:
    """``presence:<metric>`` → its presence query, for every metric the given queries read."""
    out: dict[str, str] = {}
    for q in queries:
        try:
            metrics = query_shape(q).metrics
        except ValueError:
            continue
        for m in metrics:
            out[PRESENCE_PREFIX + m] = presence_query(m)
    return out
