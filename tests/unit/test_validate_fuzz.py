"""Broken blueprints (seeded mutations of the stock files) are answered ok or invalid with their problems, never with a
traceback, and one broken file does not stop a multi-file ``gameday validate``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from blueprints import parse
from blueprints.errors import BlueprintError
from blueprints.refutability import weak_expectations
from tests.blueprint_mutations import ROOT, mutants

SEED = 20261207
SAMPLE = 600
"""A seeded sample kept in CI; bench/bench_fuzz_validate.py runs thousands."""


def test_every_mutant_is_ok_or_invalid_with_its_problems() -> None:
    """Each of the seeded sample parses (and its refutability check runs) or raises BlueprintError naming problems."""
    answered = {"ok": 0, "invalid": 0}
    for label, text in mutants(SEED, SAMPLE):
        try:
            weak_expectations(parse(text, label))
            answered["ok"] += 1
        except BlueprintError as e:
            assert e.problems and all(isinstance(p, str) and p.strip() for p in e.problems), (label, e.problems)
            answered["invalid"] += 1
    assert answered["invalid"] > SAMPLE // 2 and answered["ok"] > 0, answered


@pytest.mark.parametrize("value", ["999999999999999999999d", "1e400s", 10**400, float("inf"), float("nan")])
def test_an_absurd_duration_is_a_problem_with_its_path(value: object) -> None:
    """Durations past what a timedelta holds, infinite or NaN are reported at their path, not raised as OverflowError."""
    text = (ROOT / "blueprints" / "library" / "coredns-outage.yaml").read_text()
    import yaml

    doc = yaml.safe_load(text)
    doc["stages"][0]["observe"] = value
    with pytest.raises(BlueprintError) as caught:
        parse(yaml.safe_dump(doc))
    assert any(p.startswith("stages[0].observe") for p in caught.value.problems), caught.value.problems


def test_a_broken_file_does_not_stop_a_multi_file_validate(tmp_path: Path) -> None:
    """`gameday validate good broken good` reads all three: two ok, one invalid with its path, exit 2, no traceback."""
    label, text = next((lab, t) for lab, t in mutants(SEED, 50) if not _parses(t))
    broken = tmp_path / "broken.yaml"
    broken.write_text(text)
    good = ROOT / "blueprints" / "library" / "coredns-outage.yaml"
    done = subprocess.run([sys.executable, "-m", "flows.cli", "validate", str(good), str(broken), str(good)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "COLUMNS": "1000", "NO_COLOR": "1"})
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert out.count("ok ") >= 2 and f"invalid {broken}: " in out, (label, out)
    assert "Traceback" not in out


def _parses(text: str) -> bool:
    try:
        parse(text)
    except BlueprintError:
        return False
    return True
