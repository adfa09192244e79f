"""Loading a blueprint once with overrides applied before validation: --set, intensity, --target and --stage
(blueprints/overrides.py, blueprints.load)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from blueprints import BlueprintError, Intensity, Overrides, load
from blueprints.overrides import Assignment
from flows.params import CampaignParams


def test_set_override_changes_a_nested_field() -> None:
    """`stages[1].observe=10s` and a fault field override land in the validated campaign and its YAML."""
    c = load("smoke", Overrides(assignments=["stages[1].observe=10s", "stages[1].faults[0].grace_period=2"]))
    assert c.stages[1].observe == timedelta(seconds=10)
    assert c.stages[1].faults[0].grace_period == timedelta(seconds=2)  # type: ignore[union-attr]
    assert "observe: 10s" in c.source_yaml


def test_without_overrides_the_yaml_kept_is_the_files_text() -> None:
    """No override: the campaign keeps the file's own text, comments included."""
    from blueprints.stock import resolve

    assert load("smoke").source_yaml == resolve("smoke").read_text()


def test_bad_override_value_is_a_blueprint_problem_with_path() -> None:
    """An override that breaks validation is reported at its path like any blueprint problem."""
    with pytest.raises(BlueprintError) as e:
        load("smoke", Overrides(assignments=["stages[0].observe=-4"]))
    assert any(p.startswith("stages[0].observe") for p in e.value.problems)


def test_every_unusable_override_is_reported_at_once() -> None:
    """Two overrides past the end of a list and a key under a scalar: three problems, each naming its override."""
    with pytest.raises(BlueprintError) as e:
        load("smoke", Overrides(assignments=["stages[9].observe=1s", "stages[8]=x", "name.x=1"]))
    assert len(e.value.problems) == 3
    assert "--set stages[9].observe=1s" in e.value.problems[0] and "[9]" in e.value.problems[0]
    assert "'x' is not inside a mapping" in e.value.problems[2]


@pytest.mark.parametrize("text", ["stages[x]=1", "stages..a=1", "=1", "observe"])
def test_unreadable_override_is_refused(text: str) -> None:
    """A path that is not dotted/indexed, or no `=`, is refused with what cannot be read."""
    with pytest.raises(ValueError, match="cannot read override path|must look like path=value"):
        Assignment.parse(text)


def test_stage_selection_and_target() -> None:
    """--stage keeps only the named stages; --target replaces the cluster."""
    c = load("smoke", Overrides(stages=["rehearse"], target="lab"))
    assert [s.name for s in c.stages] == ["rehearse"]
    assert c.target.cluster == "lab"


def test_unknown_stage_is_reported() -> None:
    """--stage with a name that does not exist lists the stages there are."""
    with pytest.raises(BlueprintError) as e:
        load("smoke", Overrides(stages=["nope"]))
    assert "nope" in e.value.problems[0] and "rehearse" in e.value.problems[0]


def test_empty_intensity_changes_nothing() -> None:
    """No intensity field set: the overrides are empty and the campaign is the file's."""
    assert not Overrides(intensity=Intensity())
    assert load("smoke", Overrides(intensity=Intensity())) == load("smoke")


def test_windows_apply_to_every_stage_and_rates_to_storm_faults() -> None:
    """Observe/recovery apply to every stage; the storm rate only to control-plane-overload faults; it validates."""
    campaign = load("control-plane-storm", Overrides(intensity=Intensity(observe_s=12, recovery_s=3, storm_rate=7.5)))
    assert all(s.observe.total_seconds() == 12 and s.recovery.total_seconds() == 3 for s in campaign.stages)
    storms = [f for s in campaign.stages for f in s.faults if f.kind == "control-plane-overload"]
    assert storms and all(f.rate == 7.5 for f in storms)  # type: ignore[union-attr]


def test_a_set_after_intensity_wins() -> None:
    """Intensity is applied first, then each --set: an explicit assignment overrides the form."""
    c = load("smoke", Overrides(intensity=Intensity(observe_s=12), assignments=["stages[0].observe=5s"]))
    assert c.stages[0].observe == timedelta(seconds=5) and c.stages[1].observe == timedelta(seconds=12)


@pytest.mark.parametrize("field,value", [("observe_s", 0.5), ("storm_rate", 0), ("xid_count", 101)])
def test_out_of_range_intensity_is_refused_naming_the_field(field: str, value: float) -> None:
    """A value outside its allowed range fails validation with the field's name."""
    with pytest.raises(ValidationError, match=field):
        CampaignParams.model_validate({"intensity": {field: value}})


def test_params_load_their_campaign_once() -> None:
    """CampaignParams.campaign() loads on first use and then returns that same campaign."""
    params = CampaignParams(blueprint="smoke", stages=["rehearse"])
    assert params.campaign() is params.campaign()
    assert [s.name for s in params.campaign().stages] == ["rehearse"]
