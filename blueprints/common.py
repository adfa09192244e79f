"""Building blocks shared by every blueprint model: the strict base model, durations, selectors."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?!s))?\s*(?:(\d+(?:\.\d+)?)s)?\s*(?:(\d+)ms)?\s*$")


class Model(BaseModel):
    """Strict, frozen base for every blueprint model: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def parse_duration(value: Any) -> Any:
    """Accept seconds (int/float), '90s', '2m', '1h30m', '250ms' or an ISO/timedelta value."""
    if isinstance(value, bool):
        raise ValueError("a duration, not a boolean")
    if isinstance(value, int | float):
        return _delta(value, str(value))
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m and any(m.groups()):
            h, mi, s, ms = (float(g) if g else 0.0 for g in m.groups())
            return _delta(h * 3600 + mi * 60 + s + ms / 1000, repr(value))
        if value.startswith("-"):
            raise ValueError(f"duration {value!r} is negative")
        if not value.startswith("P"):
            raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 2m, 1h30m or seconds)")
    return value


def _delta(seconds: float, shown: str) -> timedelta:
    """A timedelta of this many seconds; ValueError (not OverflowError) for NaN, infinity or past ~2.7 million years."""
    try:
        return timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        raise ValueError(f"duration {shown} is not a usable length of time (NaN, infinite or absurdly long)") from None


def format_duration(value: timedelta) -> str:
    """Render a timedelta the way blueprints write it ('90s', '2m', '1h30m')."""
    total = value.total_seconds()
    if total == int(total):
        t = int(total)
        h, rem = divmod(t, 3600)
        m, s = divmod(rem, 60)
        parts = [f"{h}h" if h else "", f"{m}m" if m else "", f"{s}s" if s else ""]
        return "".join(parts) or "0s"
    return f"{total:g}s"


def _non_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError(f"duration must not be negative, got {value.total_seconds():g}s")
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(_non_negative),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    Field(json_schema_extra={"type": "string", "pattern": r"^(\d+(\.\d+)?(h|m|s|ms))+$"}),
]
"""A non-negative duration written as '30s', '2m', '1h30m' or seconds."""



SelectMode = Literal["one", "all", "fixed", "fixed-percent"]


class _Selecting(Model):
    """Chaos-Mesh-style choice of how many of the matching objects to affect."""

    label_selector: dict[str, str] = Field(default_factory=dict, description="matchLabels")
    mode: SelectMode = "one"
    value: float | None = Field(default=None, description="count for 'fixed', percent for 'fixed-percent'")

    @model_validator(mode="after")
    def _value_matches_mode(self) -> _Selecting:
        if self.mode in ("fixed", "fixed-percent") and self.value is None:
            raise ValueError(f"mode {self.mode!r} needs a value")
        if self.value is not None:
            if self.value <= 0:
                raise ValueError("value must be positive")
            if self.mode == "fixed-percent" and self.value > 100:
                raise ValueError("a percent value must be at most 100")
            if self.mode == "fixed" and self.value != int(self.value):
                raise ValueError("a 'fixed' count must be a whole number")
        return self

    def count(self, matching: int) -> int:
        """How many of ``matching`` objects this selector picks."""
        if self.mode == "one":
            return min(1, matching)
        if self.mode == "all":
            return matching
        if self.mode == "fixed":
            return min(int(self.value or 0), matching)
        return min(matching, max(1, int(matching * (self.value or 0) / 100))) if matching else 0


class PodSelector(_Selecting):
    """Which pods a fault touches: namespaces + labels, then how many of them."""

    namespaces: list[str] = Field(min_length=1)
    field_selector: str | None = None


class NodeSelector(_Selecting):
    """Which nodes a fault touches: labels (and optionally names), then how many of them."""

    names: list[str] = Field(default_factory=list)
