"""Typed flow parameters (the Prefect UI renders them as forms); importing them does not import Prefect."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from blueprints import Campaign, Intensity, Overrides, load
from blueprints.stock import stock_names

if TYPE_CHECKING:
    StockBlueprint = str
else:
    StockBlueprint = Literal[tuple(stock_names())]
    """The stock blueprints in blueprints/library: a dropdown in the Prefect UI."""


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
    _loaded: Campaign | None = PrivateAttr(default=None)

    def blueprint_overrides(self) -> Overrides:
        """What this run changes in its blueprint before validation."""
        return Overrides(assignments=self.overrides, intensity=self.intensity, target=self.target,
                         stages=self.stages)

    def campaign(self) -> Campaign:
        """The campaign these parameters name, read and validated on first use and kept (the CLI loads it before
        the flow starts; the flow, given the same parameters in-process, does not read the file again)."""
        if self._loaded is None:
            self._loaded = load(self.blueprint, self.blueprint_overrides())
        return self._loaded
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

