"""Loading a campaign the way a run asks for it: stock name or path, ``--set`` overrides, ``--target``, ``--stage``.

Overrides are applied to the YAML data *before* validation, so a bad override is reported like any other
blueprint problem, with its path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from blueprints import Campaign, parse
from blueprints.errors import BlueprintError

LIBRARY = Path(__file__).resolve().parent.parent / "blueprints" / "library"
_PART = re.compile(r"([A-Za-z_][\w-]*)|\[(\d+)\]")


def stock_names() -> list[str]:
    """Names of the stock blueprints in blueprints/library."""
    return sorted(p.stem for p in LIBRARY.glob("*.yaml"))


def resolve_path(blueprint: str) -> Path:
    """A stock blueprint name ('smoke') or a file path."""
    p = Path(blueprint)
    if not p.exists() and (LIBRARY / f"{blueprint}.yaml").exists():
        return LIBRARY / f"{blueprint}.yaml"
    return p


def _split(path: str) -> list[str | int]:
    parts: list[str | int] = []
    pos = 0
    for m in _PART.finditer(path):
        if m.start() != pos and path[pos : m.start()] != ".":
            raise ValueError(f"cannot read override path {path!r}")
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if pos != len(path) or not parts:
        raise ValueError(f"cannot read override path {path!r}")
    return parts


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one ``path=value`` (e.g. ``stages[0].faults[0].rate=100``; value read as YAML) in place."""
    if "=" not in assignment:
        raise ValueError(f"override {assignment!r} must look like path=value")
    path, raw = assignment.split("=", 1)
    parts = _split(path.strip())
    node: Any = data
    for i, key in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(key, int):
            if not isinstance(node, list) or key >= len(node):
                raise ValueError(f"override {path!r}: index [{key}] does not exist")
            node = node[key]
        else:
            if not isinstance(node, dict):
                raise ValueError(f"override {path!r}: {key!r} is not inside a mapping")
            node = node.setdefault(key, [] if isinstance(nxt, int) else {})
    last = parts[-1]
    value = yaml.safe_load(raw) if raw.strip() else ""
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ValueError(f"override {path!r}: index [{last}] does not exist")
        node[last] = value
    else:
        if not isinstance(node, dict):
            raise ValueError(f"override {path!r}: {last!r} is not inside a mapping")
        node[last] = value


def _stage_of(expectation: Any) -> str | None:
    """The stage an expectation is scoped to ('... in stage NAME'), if any."""
    if isinstance(expectation, dict):
        return expectation.get("stage")
    m = re.search(r"in\s+stage\s+(\S+)\s*$", str(expectation))
    return m.group(1) if m else None


def load_campaign(
    blueprint: str,
    *,
    target: str | None = None,
    stages: list[str] | None = None,
    overrides: list[str] | None = None,
) -> tuple[Campaign, str]:
    """The validated campaign (and its source text) with overrides, target and stage selection applied."""
    path = resolve_path(blueprint)
    try:
        text = path.read_text()
    except OSError as e:
        raise BlueprintError([f"(file) cannot read {path}: {e.strerror}"], str(path)) from None
    if not overrides and not target and not stages:
        return parse(text, str(path)), text
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        return parse(text, str(path)), text
    problems: list[str] = []
    for o in overrides or []:
        try:
            apply_override(data, o)
        except ValueError as e:
            problems.append(f"--set {o}: {e}")
    if target:
        tgt = data.setdefault("target", {})
        if isinstance(tgt, dict):
            tgt["cluster"] = target
    if stages:
        known = [s.get("name") for s in data.get("stages", []) if isinstance(s, dict)]
        unknown = [s for s in stages if s not in known]
        if unknown:
            problems.append(f"--stage: no stage named {', '.join(map(repr, unknown))} (stages: {known})")
        data["stages"] = [
            s for s in data.get("stages", []) if isinstance(s, dict) and s.get("name") in stages
        ]
        hyp = data.get("hypothesis")
        if isinstance(hyp, dict) and isinstance(hyp.get("expectations"), list):
            kept = [e for e in hyp["expectations"] if _stage_of(e) in (None, *stages)]
            hyp["expectations"] = kept or hyp["expectations"]  # expectations of dropped stages go with them
    if problems:
        raise BlueprintError(problems, str(path))
    edited = yaml.safe_dump(data, sort_keys=False)
    return parse(edited, str(path)), edited
