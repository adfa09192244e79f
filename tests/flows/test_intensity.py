"""flows/intensity.py: the typed intensity form becomes blueprint overrides that validate, within their ranges."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flows.intensity import intensity_overrides
from flows.loading import load_campaign
from flows.params import CampaignParams, Intensity


def test_empty_intensity_changes_nothing() -> None:
    """No intensity field set: no overrides."""
    assert intensity_overrides("smoke", Intensity()) == []


def test_windows_apply_to_every_stage_and_rates_to_storm_faults() -> None:
    """Observe/recovery apply to every stage; the storm rate only to control-plane-overload faults; it validates."""
    overrides = intensity_overrides("control-plane-storm", Intensity(observe_s=12, recovery_s=3, storm_rate=7.5))
    campaign, _ = load_campaign("control-plane-storm", overrides=overrides)
    assert all(s.observe.total_seconds() == 12 and s.recovery.total_seconds() == 3 for s in campaign.stages)
    storms = [f for s in campaign.stages for f in s.faults if f.kind == "control-plane-overload"]
    assert storms and all(f.rate == 7.5 for f in storms)  # type: ignore[union-attr]


@pytest.mark.parametrize("field,value", [("observe_s", 0.5), ("storm_rate", 0), ("xid_count", 101)])
def test_out_of_range_intensity_is_refused_naming_the_field(field: str, value: float) -> None:
    """A value outside its allowed range fails validation with the field's name."""
    with pytest.raises(ValidationError, match=field):
        CampaignParams.model_validate({"intensity": {field: value}})
