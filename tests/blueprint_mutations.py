"""Broken blueprints for fuzzing ``gameday validate``: seeded mutations of the stock files.

``mutants(seed, count)`` yields ``(label, text)``: a stock blueprint (blueprints/library, blueprints/replays) with one to
three random mutations: a key removed, renamed or added; a value replaced by one of a pool of hostile values (absurd
durations and numbers, NaN and infinity, wrong types, deep nesting, control characters, huge strings); a list emptied,
duplicated or turned into a mapping; or the YAML text itself cut short or corrupted. Every mutant must be answered
``ok`` or ``invalid`` with its problems, never with a traceback.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
STOCK = sorted([*(ROOT / "blueprints" / "library").glob("*.yaml"), *(ROOT / "blueprints" / "replays").glob("*.yaml")])

HOSTILE: list[Any] = [
    None, True, False, 0, -1, 1, 2**63, -(2**63), 10**400, 1e308, -1e308, float("nan"), float("inf"),
    "", " ", "0s", "-5s", "1e400s", "999999999999999999999d", "99999999999999999999999999h", "nan", "inf", "1.5.3s",
    "\x00", "\u202e\u0000evil", "x" * 10_000, "{{", "${HOME}", "../../etc/passwd", "during fault", ">= 1",
    "max(x) >= 1 during fault in stage nowhere", "sum(rate(x[5s]) >= 1 during fault", "delta(x) >= 1e400 during fault",
    [], [None], [[[[[[[[[[[]]]]]]]]]]], {}, {"a": {"b": {"c": {"d": {}}}}}, {"kind": "no-such-kind"},
    {"range": [5, 1]}, {"range": [float("nan"), 1]}, [1, "two", None], 3.5, -0.0,
]
"""Values that a careless validator turns into a traceback (OverflowError, TypeError, RecursionError, ...)."""

KEYS = ["name", "kind", "mode", "observe", "recovery", "baseline", "final_recovery", "lease", "query", "every",
        "timeout", "count", "interval", "expectations", "selector", "names", "blast_radius", "max_pods", "tolerance",
        "approval", "approval_timeout", "ramp_up", "rate", "concurrency", "threshold", "zzz_unknown"]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*path, i))


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        node = node[p]
    return node


def _mutate(doc: Any, rng: random.Random) -> str:
    """Apply one mutation to doc in place; returns what it did."""
    paths = [p for p in _paths(doc) if p]
    if not paths:
        return "nothing"
    path = rng.choice(paths)
    parent, key = _get(doc, path[:-1]), path[-1]
    op = rng.randrange(7)
    if op == 0:
        parent[key] = copy.deepcopy(rng.choice(HOSTILE))
        return f"{path} = hostile"
    if op == 1 and isinstance(parent, dict):
        del parent[key]
        return f"del {path}"
    if op == 2 and isinstance(parent, dict):
        parent[rng.choice(KEYS)] = parent.pop(key)
        return f"rename {path}"
    if op == 3 and isinstance(parent, dict):
        parent[rng.choice(KEYS)] = copy.deepcopy(rng.choice(HOSTILE))
        return f"add under {path[:-1]}"
    if op == 4 and isinstance(parent[key], list):
        parent[key] = rng.choice([[], parent[key] * 3, {str(i): v for i, v in enumerate(parent[key])}])
        return f"reshape list {path}"
    if op == 5 and isinstance(parent[key], str):
        value = parent[key]
        cut = rng.randrange(len(value) + 1)
        parent[key] = rng.choice([value[:cut], value + value, value.replace("s", "d"), value + " or vector(0)"])
        return f"edit text {path}"
    parent[key] = copy.deepcopy(rng.choice(HOSTILE))
    return f"{path} = hostile"


def mutants(seed: int, count: int) -> Iterator[tuple[str, str]]:
    """``count`` broken variants of the stock blueprints, the same for the same seed: (label, YAML text)."""
    rng = random.Random(seed)
    docs = {p.name: yaml.safe_load(p.read_text()) for p in STOCK}
    names = sorted(docs)
    for i in range(count):
        name = rng.choice(names)
        if rng.random() < 0.08:  # the text itself broken: cut short or corrupted bytes
            text = (STOCK[names.index(name)]).read_text()
            cut = rng.randrange(len(text))
            text = rng.choice([text[:cut], text[:cut] + "\t: [\n" + text[cut:], text.replace(":", "", 1)])
            yield f"{i}:{name}:text", text
            continue
        doc = copy.deepcopy(docs[name])
        done = [_mutate(doc, rng) for _ in range(rng.randint(1, 3))]
        try:
            text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
        except (yaml.YAMLError, RecursionError, ValueError):
            continue
        yield f"{i}:{name}:{'; '.join(done)}", text
