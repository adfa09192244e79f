"""Loading a campaign the way `gameday run` does: --set overrides, --target and --stage (flows/loading.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from blueprints import BlueprintError
from flows.loading import apply_override, load_campaign


def test_set_override_changes_a_nested_field() -> None:
    """`stages[1].observe=10s` and a fault field override land in the validated campaign."""
    c, text = load_campaign(
        "smoke", overrides=["stages[1].observe=10s", "stages[1].faults[0].grace_period=2"]
    )
    assert c.stages[1].observe == timedelta(seconds=10)
    assert c.stages[1].faults[0].grace_period == timedelta(seconds=2)  # type: ignore[union-attr]
    assert "10s" in text


def test_bad_override_value_is_a_blueprint_problem_with_path() -> None:
    """An override that breaks validation is reported at its path like any blueprint problem."""
    with pytest.raises(BlueprintError) as e:
        load_campaign("smoke", overrides=["stages[0].observe=-4"])
    assert any(p.startswith("stages[0].observe") for p in e.value.problems)


def test_override_to_missing_index_is_reported() -> None:
    """An override pointing past the end of a list says which index does not exist."""
    with pytest.raises(BlueprintError) as e:
        load_campaign("smoke", overrides=["stages[9].observe=1s"])
    assert "[9]" in e.value.problems[0]


def test_unreadable_override_path() -> None:
    """A path that is not dotted/indexed is refused."""
    with pytest.raises(ValueError, match="cannot read override path"):
        apply_override({}, "stages[x]=1")


def test_stage_selection_and_target() -> None:
    """--stage keeps only the named stages; --target replaces the cluster."""
    c, _ = load_campaign("smoke", stages=["rehearse"], target="lab")
    assert [s.name for s in c.stages] == ["rehearse"]
    assert c.target.cluster == "lab"


def test_unknown_stage_is_reported() -> None:
    """--stage with a name that does not exist lists the stages there are."""
    with pytest.raises(BlueprintError) as e:
        load_campaign("smoke", stages=["nope"])
    assert "nope" in e.value.problems[0] and "rehearse" in e.value.problems[0]
