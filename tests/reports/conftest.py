"""Shared fixtures for the report tests: synthetic runs (make_fixture.py) and every recorded run in fixtures/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reports.make_fixture import EXPECTED, make_run

FIXTURES = Path(__file__).parent / "fixtures"
RECORDED = sorted(p.name for p in FIXTURES.iterdir() if (p / "record.json").exists()) if FIXTURES.exists() else []
RUN_IDS = [f"synthetic-{s}" for s in EXPECTED] + [f"recorded-{n}" for n in RECORDED]


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every synthetic scenario, written once per session."""
    root = tmp_path_factory.mktemp("synthetic")
    return {name: make_run(root / name, name) for name in EXPECTED}


@pytest.fixture(params=RUN_IDS)
def any_run(request: pytest.FixtureRequest, synthetic: dict[str, Path]) -> Path:
    """Each run directory in turn: the synthetic scenarios, then every recorded run under fixtures/."""
    name: str = request.param
    if name.startswith("synthetic-"):
        return synthetic[name.removeprefix("synthetic-")]
    return FIXTURES / name.removeprefix("recorded-")
