"""Benchmark: thousands of broken blueprints (seeded mutations of the stock files, tests/blueprint_mutations.py)
through the validator that `gameday validate` runs; prints how many were ok, invalid, and crashed (a traceback), with
the crashes grouped by where they were raised. Asserts nothing.

    .venv/bin/python bench/bench_fuzz_validate.py [--count 2500] [--seed 1] [--seed 7 ...]
"""

from __future__ import annotations

import argparse
import collections
import time
import traceback

from blueprints import parse
from blueprints.errors import BlueprintError
from blueprints.refutability import weak_expectations
from tests.blueprint_mutations import mutants


def main() -> None:
    """Run the mutants for each seed and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2500)
    parser.add_argument("--seed", type=int, action="append")
    args = parser.parse_args()
    for seed in args.seed or [1]:
        answered: collections.Counter[str] = collections.Counter()
        crashes: collections.Counter[str] = collections.Counter()
        first: dict[str, str] = {}
        started = time.perf_counter()
        for label, text in mutants(seed, args.count):
            try:
                weak_expectations(parse(text, label))
                answered["ok"] += 1
            except BlueprintError:
                answered["invalid"] += 1
            except Exception as e:  # noqa: BLE001 - counting what would have been a traceback
                where = traceback.extract_tb(e.__traceback__)[-1]
                key = f"{type(e).__name__} at {where.filename}:{where.lineno}"
                crashes[key] += 1
                first.setdefault(key, label)
        took = time.perf_counter() - started
        total = sum(answered.values()) + sum(crashes.values())
        print(f"seed {seed}: {total} mutants in {took:.1f} s ({total / took:.0f}/s): ok {answered['ok']}, "
              f"invalid {answered['invalid']}, tracebacks {sum(crashes.values())}")
        for key, n in crashes.most_common():
            print(f"  {n} x {key} (first: {first[key]})")


if __name__ == "__main__":
    main()
