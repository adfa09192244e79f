"""Chaos Toolkit experiments ↔ gameday blueprints.

Import: title → name, steady-state-hypothesis probes → ``steady_state`` (chaostoolkit probes), method
actions → one stage of ``chaostoolkit`` faults (a method probe right after an action becomes that action's
``verify``), rollbacks attached to the actions in order, configuration/secrets copied onto every fault.
The hypothesis is what the experiment's steady state says, observed during the fault: each Prometheus probe
(``chaosprometheus.probes.query``) becomes an observable and its tolerance expectations on every sample; other
probes cannot be observed as series, so the user names the observables and expectations (``--observable``,
``--expect``); an experiment with neither is refused rather than given a hypothesis nothing could refute.
Export: the reverse, for single-stage campaigns whose faults and steady-state probes are all Chaos Toolkit.
"""

from __future__ import annotations

import re
from typing import Any, cast

import yaml

from blueprints import Campaign, parse
from blueprints.faults import ChaosToolkitFault
from tasks.errors import PermanentError


class ConversionError(PermanentError):
    """An experiment or blueprint that cannot be converted; says why."""

    exit_code = 2


def slug(text: str) -> str:
    """A blueprint name from a title: lower-case, dashes, at most 63 characters."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (s or "imported-experiment")[:63].strip("-")


def _activities(experiment: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """An experiment's activities under ``key``, with string references resolved by name."""
    by_name: dict[str, dict[str, Any]] = {}
    for section in ("method", "rollbacks"):
        for a in experiment.get(section) or []:
            if isinstance(a, dict) and a.get("name"):
                by_name[a["name"]] = a
    for a in (experiment.get("steady-state-hypothesis") or {}).get("probes") or []:
        if isinstance(a, dict) and a.get("name"):
            by_name[a["name"]] = a
    out = []
    for a in experiment.get(key) or []:
        if isinstance(a, str):
            if a not in by_name:
                raise ConversionError(f"{key}: reference to unknown activity {a!r}")
            a = by_name[a]
        out.append(dict(a))
    return out


def _probe(p: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": p.get("name") or "probe",
        "type": "chaostoolkit",
        "provider": p["provider"],
    }
    if "tolerance" in p:
        out["tolerance"] = p["tolerance"]
    return out


def _tolerance_bounds(tolerance: Any) -> tuple[float | None, float | None] | None:
    """(low, high) for a numeric CTK tolerance: a number, [low, high], or {type: range, range: [low, high]}."""
    if isinstance(tolerance, bool):
        return None
    if isinstance(tolerance, int | float):
        return float(tolerance), float(tolerance)
    if isinstance(tolerance, dict) and tolerance.get("type") == "range":
        tolerance = tolerance.get("range")
    if isinstance(tolerance, list) and len(tolerance) == 2 and all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in tolerance):
        return float(tolerance[0]), float(tolerance[1])
    return None


def _prometheus_expectations(probe: dict[str, Any]) -> tuple[dict[str, str], list[str]] | None:
    """An observable and its expectations for a chaosprometheus query probe with a numeric tolerance."""
    provider = probe.get("provider") or {}
    args = provider.get("arguments") or {}
    if not (provider.get("type") == "python" and str(provider.get("module", "")).startswith("chaosprometheus")
            and isinstance(args.get("query"), str)):
        return None
    bounds = _tolerance_bounds(probe.get("tolerance"))
    if bounds is None:
        return None
    name = re.sub(r"\W+", "_", str(probe.get("name") or "probe")).strip("_") or "probe"
    name = name if re.match(r"^[A-Za-z_]", name) else f"p_{name}"
    low, high = bounds
    if low == high:
        return {"name": name, "query": args["query"]}, [f"{name} == {low:g} during fault"]
    return {"name": name, "query": args["query"]}, [f"{name} >= {low:g} during fault",
                                                    f"{name} <= {high:g} during fault"]


def import_experiment(
    experiment: object,
    *,
    target: str = "lab",
    namespaces: list[str] | None = None,
    owner: str = "imported",
    schema_ref: str = "../schema.json",
    observables: dict[str, str] | None = None,
    expectations: list[str] | None = None,
) -> str:
    """Blueprint YAML text for a Chaos Toolkit experiment (validated before it is returned)."""
    if not isinstance(experiment, dict) or "method" not in experiment:
        raise ConversionError("not a Chaos Toolkit experiment: no 'method'")
    title = str(experiment.get("title") or "imported experiment")
    ssh = experiment.get("steady-state-hypothesis") or {}
    method = _activities(experiment, "method")
    rollbacks = _activities(experiment, "rollbacks")
    config = experiment.get("configuration") or {}
    secrets = experiment.get("secrets") or {}
    faults: list[dict[str, Any]] = []
    for a in method:
        if a.get("type") == "probe":
            if not faults:
                raise ConversionError(
                    f"method probe {a.get('name')!r} comes before any action; move it to "
                    "the steady-state-hypothesis"
                )
            faults[-1]["verify"] = {k: v for k, v in a.items() if k != "tolerance"}
            continue
        fault: dict[str, Any] = {
            "kind": "chaostoolkit",
            "name": slug(a.get("name") or f"action-{len(faults)}"),
            "action": a,
        }
        if config:
            fault["configuration"] = config
        if secrets:
            fault["secrets"] = secrets
        faults.append(fault)
    if not faults:
        raise ConversionError("the experiment's method has no action: nothing to inject")
    if len(rollbacks) > len(faults):
        raise ConversionError(
            f"{len(rollbacks)} rollbacks for {len(faults)} actions: cannot attach each rollback to one action"
        )
    for f, r in zip(faults, rollbacks):
        f["rollback"] = r
    raw_probes = [p for p in ssh.get("probes") or [] if isinstance(p, dict) and "provider" in p]
    probes = [_probe(p) for p in raw_probes]
    observed: list[dict[str, str]] = [{"name": n, "query": q} for n, q in (observables or {}).items()]
    expected = list(expectations or [])
    unobservable: list[str] = []
    for p in raw_probes:
        got = _prometheus_expectations(p)
        if got is None:
            unobservable.append(f"{p.get('name') or 'probe'!r} ({(p.get('provider') or {}).get('type', '?')})")
            continue
        observed.append(got[0])
        expected += got[1]
    if not expected:
        kept = f"; its probes {', '.join(unobservable)} stay steady-state checks" if unobservable else ""
        raise ConversionError(
            "the experiment's steady-state hypothesis has no probe gameday can observe during the fault "
            f"(only chaosprometheus query probes with a numeric tolerance become expectations){kept}. "
            "Say what would refute it: --observable NAME=PROMQL --expect 'mean(NAME) >= 0.99 during fault'"
        )
    blueprint: dict[str, Any] = {
        "apiVersion": "gameday/v1",
        "name": slug(title),
        "description": str(
            experiment.get("description") or f"Imported from the Chaos Toolkit experiment {title!r}."
        ),
        "owner": owner,
        "tags": [str(t) for t in experiment.get("tags") or []] + ["chaostoolkit"],
        "hypothesis": {
            "belief": str(ssh.get("title") or f"the system keeps its steady state during {title}"),
            "expectations": expected,
        },
        "target": {
            "cluster": target,
            "namespaces": namespaces or ["default"],
            "blast_radius": {"max_pods": 1},
        },
        "observables": observed,
        "steady_state": probes,
        "baseline": "5s",
        "stages": [
            {
                "name": "method",
                "description": "the experiment's method",
                "faults": faults,
                "observe": "10s",
                "recovery": "5s",
            }
        ],
    }
    text = f"# yaml-language-server: $schema={schema_ref}\n" + yaml.safe_dump(
        blueprint, sort_keys=False, width=110
    )
    parse(text, f"<imported {title}>")
    return text


def export_campaign(campaign: Campaign) -> dict[str, Any]:
    """The Chaos Toolkit experiment for a single-stage campaign of chaostoolkit faults and probes."""
    if len(campaign.stages) != 1:
        raise ConversionError(
            f"export-ctk needs a single-stage campaign; {campaign.name!r} has "
            f"{len(campaign.stages)} stages ({', '.join(s.name for s in campaign.stages)})"
        )
    stage = campaign.stages[0]
    other = [f"{f.name or f.kind} ({f.kind})" for f in stage.faults if f.kind != "chaostoolkit"]
    if other:
        raise ConversionError(
            f"export-ctk handles chaostoolkit faults only; stage {stage.name!r} has {other}"
        )
    probes = [p for p in campaign.steady_state if p.type == "chaostoolkit"]
    skipped = [p.name for p in campaign.steady_state if p.type != "chaostoolkit"]
    if skipped:
        raise ConversionError(f"export-ctk handles chaostoolkit steady-state probes only; not {skipped}")
    method: list[dict[str, Any]] = []
    rollbacks: list[dict[str, Any]] = []
    config: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    for f in (cast(ChaosToolkitFault, fault) for fault in stage.faults):
        method.append(dict(f.action))
        if f.verify:
            method.append(dict(f.verify))
        if f.rollback:
            rollbacks.append(dict(f.rollback))
        config.update(f.configuration)
        secrets.update(f.secrets)
    exp: dict[str, Any] = {
        "version": "1.0.0",
        "title": campaign.name,
        "description": campaign.description or campaign.hypothesis.belief,
        "tags": list(campaign.tags),
        "steady-state-hypothesis": {
            "title": campaign.hypothesis.belief,
            "probes": [
                {"type": "probe", "name": p.name, "tolerance": p.tolerance, "provider": p.provider}
                for p in probes
            ],
        },
        "method": method,
        "rollbacks": rollbacks,
    }
    if config:
        exp["configuration"] = config
    if secrets:
        exp["secrets"] = secrets
    return exp
