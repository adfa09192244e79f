"""The campaign: target, observables, steady state, guardrails, baseline, stages and the hypothesis."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from blueprints.budget import Preflight
from blueprints.common import Duration, Model
from blueprints.faults import Fault
from blueprints.hypothesis import Hypothesis
from blueprints.probes import Guardrail, Probe
from blueprints.promql import query_shape

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SETUP = "setup"  # the stage name under which the setup's changes are ledgered and recorded


class BlastRadius(Model):
    """The most a campaign may touch at once: checked at plan time for each fault and for each stage's faults
    together (the distinct nodes, pods and GPUs they touch)."""

    max_nodes: int | None = Field(default=None, ge=0)
    max_nodes_percent: float | None = Field(default=None, ge=0, le=100)
    max_pods: int | None = Field(default=None, ge=0)
    max_pods_percent: float | None = Field(default=None, ge=0, le=100)
    max_gpus: int | None = Field(default=None, ge=0, description="GPUs node-agent faults act on (gpu-xid, gpu-degrade)")

    @model_validator(mode="after")
    def _declared(self) -> BlastRadius:
        if all(v is None for v in (self.max_nodes, self.max_nodes_percent, self.max_pods, self.max_pods_percent,
                                   self.max_gpus)):
            raise ValueError("declare at least one limit (max_nodes, max_nodes_percent, max_pods, max_pods_percent, "
                             "max_gpus)")
        return self


class Target(Model):
    """Where the campaign runs: the lab, or a cluster through a kubeconfig context."""

    cluster: str = Field(min_length=1, description="'lab' or the name of a kubeconfig context")
    kubeconfig: str | None = Field(default=None, description="path; default ~/.kube/config (lab: its own)")
    prometheus_url: str | None = Field(default=None, pattern=r"^https?://", description="lab: discovered")
    namespaces: list[str] = Field(min_length=1, description="namespaces faults may touch")
    blast_radius: BlastRadius

    @property
    def is_lab(self) -> bool:
        """Whether this target is the local lab."""
        return self.cluster == "lab"

    @model_validator(mode="after")
    def _prometheus(self) -> Target:
        if not self.is_lab and not self.prometheus_url:
            raise ValueError("a non-lab target needs prometheus_url")
        return self


class Observable(Model):
    """A named PromQL series recorded during the whole campaign and charted in the report."""

    name: str = Field(pattern=r"^[A-Za-z_]\w*$")
    query: str = Field(min_length=1)
    unit: str = ""
    description: str = ""
    slo: tuple[Literal["<=", "<", ">=", ">"], float] | None = Field(
        default=None, description="e.g. ['<=', 1.0]: samples outside count as SLO violations"
    )


class Stage(Model):
    """Faults applied together, watched for ``observe``, rolled back, then a recovery window."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    faults: list[Fault] = Field(min_length=1)
    observe: Duration = timedelta(seconds=30)
    recovery: Duration = timedelta(seconds=30)
    approval: Literal["none", "required"] = "none"
    approval_timeout: Duration = timedelta(minutes=10)


class Campaign(Model):
    """A whole game day: what we believe, where, what we break, how we watch, when we stop."""

    api_version: Literal["gameday/v1"] = Field(default="gameday/v1", alias="apiVersion")
    name: str = Field(pattern=NAME_PATTERN, max_length=63)
    description: str = ""
    owner: str = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    hypothesis: Hypothesis
    target: Target
    observables: list[Observable] = Field(default_factory=list)
    steady_state: list[Probe] = Field(default_factory=list)
    preflight: Preflight = Field(default_factory=Preflight, description=(
        "gates checked before anything is injected: error_budget refuses the run while its SLO has too little "
        "budget left"))
    guardrails: list[Guardrail] = Field(default_factory=list)
    setup: list[Fault] = Field(
        default_factory=list,
        description="changes that hold for the whole run (the fix a campaign proves, say): applied after the "
        "steady-state check and before the baseline, each in the ledger first and verified like a fault, "
        "undone in reverse order after the final recovery (or when the run ends any other way)",
    )
    baseline: Duration = timedelta(seconds=30)
    stages: list[Stage] = Field(min_length=1)
    cooldown: Duration = timedelta(seconds=0)
    final_recovery: Duration = timedelta(seconds=0)
    continue_on_abort: bool = False
    _source_yaml: str = PrivateAttr(default="")

    @property
    def source_yaml(self) -> str:
        """The YAML this campaign was validated from (with any overrides applied); empty when built otherwise."""
        return self._source_yaml

    @field_validator("stages")
    @classmethod
    def _unique_stages(cls, v: list[Stage]) -> list[Stage]:
        seen: set[str] = set()
        for s in v:
            if s.name == SETUP:
                raise ValueError(f"stage name {SETUP!r} is reserved for the campaign's setup")
            if s.name in seen:
                raise ValueError(f"stage name {s.name!r} is used twice")
            seen.add(s.name)
        return v

    def setup_stage(self) -> Stage | None:
        """The setup as a stage named 'setup' (how it is planned, ledgered and recorded); None without one."""
        if not self.setup:
            return None
        return Stage(name=SETUP, description="changes held for the whole run", faults=self.setup,
                     observe=timedelta(0), recovery=timedelta(0))

    def fault_ids(self, stage: Stage) -> list[str]:
        """Stable ids of a stage's faults: their name, or '<kind>-<index>'."""
        return [f.name or f"{f.kind}-{i}" for i, f in enumerate(stage.faults)]

    def guardrail_refutes(self, g: Guardrail) -> bool:
        """Whether a breach of ``g`` refutes the belief: as declared, else whether it reads a metric that an
        observable named by the hypothesis reads."""
        if g.refutes is not None:
            return g.refutes
        query = getattr(g.probe, "query", None)
        if not isinstance(query, str):
            return False
        named = {e.observable for e in self.hypothesis.expectations}
        try:
            mine = set(query_shape(query).metrics)
            theirs = {m for o in self.observables if o.name in named for m in query_shape(o.query).metrics}
        except ValueError:
            return False
        return bool(mine & theirs)

    def stage(self, name: str) -> Stage:
        """The stage called ``name``."""
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)
