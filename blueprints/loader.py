"""Loading blueprints: YAML → (overrides) → Campaign, read and validated once, every problem reported at once,
each with its path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from blueprints.campaign import Campaign
from blueprints.errors import BlueprintError
from blueprints.faults import FAULT_KINDS, NodeCordon, PodKill
from blueprints.overrides import Overrides
from blueprints.promql import check_promql
from blueprints.stock import resolve

_TAGS = set(FAULT_KINDS) | {"prometheus", "http", "kubernetes", "dns", "chaostoolkit"}


def format_loc(loc: tuple[Any, ...]) -> str:
    """Render a pydantic error location as ``stages[2].faults[0].code`` (union tags dropped)."""
    out = ""
    prev_index = False
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            prev_index = True
            continue
        if prev_index and part in _TAGS:
            prev_index = False
            continue
        if isinstance(part, str) and (part.startswith("function-") or part.startswith("tagged-union")):
            continue
        out += f".{part}" if out else str(part)
        prev_index = False
    return out or "(top level)"


def _pydantic_problems(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "union_tag_invalid":
            ctx = e.get("ctx", {})
            msg = f"unknown {ctx.get('discriminator', 'kind')} {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
        problems.append(f"{format_loc(tuple(e['loc']))}: {msg}")
    return problems


def _semantic_problems(c: Campaign) -> list[str]:
    """Cross-field checks pydantic cannot express: references, namespaces, static blast radius, PromQL."""
    problems: list[str] = []
    names = {o.name for o in c.observables}
    stages = {s.name for s in c.stages}
    for i, e in enumerate(c.hypothesis.expectations):
        if e.observable not in names:
            problems.append(
                f"hypothesis.expectations[{i}].observable: {e.observable!r} is not a declared observable "
                f"({sorted(names) or 'none declared'})"
            )
        obs = next((o for o in c.observables if o.name == e.observable), None)
        if e.statistic == "slo_violations_per_min" and obs is not None and obs.slo is None:
            problems.append(
                f"hypothesis.expectations[{i}].statistic: slo_violations_per_min needs observable "
                f"{e.observable!r} to declare an slo (e.g. slo: ['>=', 0.99])"
            )
        if e.stage and e.stage not in stages:
            problems.append(f"hypothesis.expectations[{i}].stage: no stage named {e.stage!r}")
    allowed = set(c.target.namespaces)
    radius = c.target.blast_radius
    located = [(f"setup[{fi}]", f) for fi, f in enumerate(c.setup)]
    located += [(f"stages[{si}].faults[{fi}]", f) for si, stage in enumerate(c.stages) for fi, f in enumerate(stage.faults)]
    for path, f in located:
        if isinstance(f, PodKill):
            bad = [n for n in f.selector.namespaces if n not in allowed]
            if bad:
                problems.append(f"{path}.selector.namespaces: {bad} not in target.namespaces {sorted(allowed)}")
            if f.selector.mode == "fixed" and radius.max_pods is not None and (f.selector.value or 0) > radius.max_pods:
                problems.append(
                    f"{path}.selector.value: {int(f.selector.value or 0)} pods exceeds "
                    f"target.blast_radius.max_pods {radius.max_pods}"
                )
        if isinstance(f, NodeCordon) and f.selector.mode == "fixed" and radius.max_nodes is not None:
            if (f.selector.value or 0) > radius.max_nodes:
                problems.append(
                    f"{path}.selector.value: {int(f.selector.value or 0)} nodes exceeds "
                    f"target.blast_radius.max_nodes {radius.max_nodes}"
                )
        ns = getattr(f, "namespace", None)
        if f.kind in ("coredns-outage", "control-plane-overload") and ns not in allowed:
            problems.append(f"{path}.namespace: {ns!r} not in target.namespaces {sorted(allowed)}")
    queries: list[tuple[str, str]] = [(f"observables[{i}].query", o.query) for i, o in enumerate(c.observables)]
    queries += [(f"steady_state[{i}].query", p.query) for i, p in enumerate(c.steady_state) if p.type == "prometheus"]
    queries += [
        (f"guardrails[{i}].probe.query", g.probe.query) for i, g in enumerate(c.guardrails) if g.probe.type == "prometheus"
    ]
    if c.preflight.error_budget is not None:
        queries.append(("preflight.error_budget.sli", c.preflight.error_budget.sli))
    for (path, _), problem in zip(queries, check_promql([q for _, q in queries]), strict=True):
        if problem:
            problems.append(f"{path}: {problem}")
    return problems


def parse(text: str, source: str = "<blueprint>", overrides: Overrides | None = None) -> Campaign:
    """Validate blueprint YAML text, with ``overrides`` applied to its data first; raise BlueprintError listing
    every problem with its path. The campaign keeps the YAML it was validated from (``source_yaml``)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise BlueprintError([f"(yaml) {where}{getattr(e, 'problem', None) or e}"], source) from None
    if not isinstance(data, dict):
        raise BlueprintError(["(top level): a blueprint is a mapping (name, owner, hypothesis, target, stages...)"], source)
    if overrides:
        problems = overrides.apply(data)
        if problems:
            raise BlueprintError(problems, source)
        text = yaml.safe_dump(data, sort_keys=False)
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as e:
        raise BlueprintError(_pydantic_problems(e), source) from None
    problems = _semantic_problems(campaign)
    if problems:
        raise BlueprintError(problems, source)
    campaign._source_yaml = text
    return campaign


def load(blueprint: str | Path, overrides: Overrides | None = None) -> Campaign:
    """Read a blueprint file (or a stock blueprint by name) once and validate it with ``overrides`` applied;
    raise BlueprintError listing every problem with its path."""
    p = resolve(blueprint)
    try:
        text = p.read_text()
    except OSError as e:
        raise BlueprintError([f"(file) cannot read {p}: {e.strerror}"], str(p)) from None
    return parse(text, str(p), overrides)
