"""Typed flow parameters (the Prefect UI renders them as forms) and the approval input model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from prefect.input import RunInput
from pydantic import BaseModel, ConfigDict, Field

from flows.loading import stock_names

if TYPE_CHECKING:
    StockBlueprint = str
else:
    StockBlueprint = Literal[tuple(stock_names())]
    """The stock blueprints in blueprints/library: a dropdown in the Prefect UI."""


class Intensity(BaseModel):
    """Intensity overrides with their allowed ranges (applied to every stage / every fault of the kind)."""

    model_config = ConfigDict(extra="forbid")

    baseline_s: float | None = Field(
        title="Baseline (s)", default=None, ge=0, le=3600, description="baseline window, seconds"
    )
    observe_s: float | None = Field(
        title="Observe (s)", default=None, ge=1, le=3600, description="each stage's fault window, seconds"
    )
    recovery_s: float | None = Field(
        title="Recovery (s)", default=None, ge=0, le=3600, description="each stage's recovery, seconds"
    )
    approval_timeout_s: float | None = Field(
        title="Approval timeout (s)",
        default=None,
        ge=10,
        le=86_400,
        description="how long a paused stage waits for a decision",
    )
    storm_rate: float | None = Field(
        title="Storm rate (LIST/s)",
        default=None,
        gt=0,
        le=100_000,
        description="control-plane-overload: total LIST/s",
    )
    storm_concurrency: int | None = Field(
        title="Storm concurrency",
        default=None,
        ge=1,
        le=4096,
        description="control-plane-overload: concurrent clients",
    )
    xid_count: int | None = Field(
        title="XID count", default=None, ge=1, le=100, description="gpu-xid: errors per injection"
    )


class CampaignParams(BaseModel):
    """What to run: a stock blueprint or a path, where, which stages, and overrides."""

    model_config = ConfigDict(extra="forbid")

    blueprint: (
        Annotated[StockBlueprint, Field(title="stock blueprint")] | Annotated[str, Field(title="path")]
    ) = Field(default="smoke", description="a stock blueprint name, or a path to a blueprint YAML file")
    target: str | None = Field(
        default=None, description="'lab' or a kubeconfig context; default: the blueprint's"
    )
    dry_run: bool = Field(default=False, description="plan only: show what would change, touch nothing")
    stages: list[str] = Field(default_factory=list, description="run only these stages (default: all)")
    overrides: list[str] = Field(
        default_factory=list,
        description="path=value edits applied before validation, e.g. stages[0].observe=10s",
    )
    intensity: Intensity = Field(
        default_factory=Intensity, description="intensity overrides (each within its allowed range)"
    )
    approval: Literal["pause", "auto", "prompt"] = Field(
        default="pause",
        description="how approval-required stages are decided: pause the run, auto, or terminal prompt",
    )
    started_by: str = Field(default="", description="who started the run (for the record)")
    selection_seed: str = Field(default="", max_length=64, description=(
        "seeds which targets the selectors pick: the seed `gameday plan` printed makes the run hit the targets that "
        "plan showed (while the candidates are the same); empty: the run id"))


class ReconcileParams(BaseModel):
    """Which target to reconcile."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(default="lab", description="'lab' or a kubeconfig context")
    release_lease: bool = Field(
        default=False,
        description="the run holding the target is dead: revert its faults too, drop its lease and Prefect slot",
    )


class StopParams(BaseModel):
    """Which target the kill switch stops, and how long it keeps new campaigns off it."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(default="lab", description="'lab' or a kubeconfig context")
    hold_seconds: float = Field(
        default=0.0, ge=0, le=86_400,
        description="keep the target's campaign lease this long after stopping (new campaigns are refused)",
    )


class ApprovalInput(RunInput):
    """The decision an operator gives a paused stage."""

    decision: Literal["go", "skip", "abort"] = "go"
    comment: str = ""
    by: str = ""
