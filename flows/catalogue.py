"""What ``list-faults`` and ``suggest`` print: the fault catalogue and history-ranked suggestions."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import get_args

from blueprints.faults import Fault


def _spec_docs() -> dict[str, str]:
    union = get_args(get_args(Fault)[0])
    out: dict[str, str] = {}
    for cls in union:
        kind = cls.model_fields["kind"].default
        out[str(kind)] = (inspect.getdoc(cls) or "").splitlines()[0] if inspect.getdoc(cls) else ""
    return out


def _summary(cls: type) -> str:
    """The first paragraph of a class's docstring, as one line."""
    return " ".join((inspect.getdoc(cls) or "").split("\n\n")[0].split())


def fault_catalogue() -> list[tuple[str, str, str]]:
    """(kind, one-line description, blast radius and undo) for every registered fault kind; the undo is the first
    paragraph of the docstring of the behaviour's undo model."""
    from tasks.faults import REGISTRY

    docs = _spec_docs()
    return [(kind, docs.get(kind, ""), f"blast radius: {b.blast_radius}; undo: {_summary(b.undo)}")
            for kind, b in sorted(REGISTRY.items())]


def suggestions(limit: int) -> list[str]:
    """Stock blueprints ranked by expected information, as printable lines."""
    import reports
    from blueprints import load
    from blueprints.stock import stock_names
    from reports.suggest import rank
    from tasks.settings import Settings

    blueprints = [(name, load(name)) for name in stock_names()]
    with reports.HistoryStore(Settings().history_path) as history:
        ranked = rank(blueprints, history, None, datetime.now(UTC))
    lines: list[str] = []
    for s in ranked[:limit]:
        lines.append(f"{s.score:6.1f}  {s.name}")
        for why in getattr(s, "reasons", []) or []:
            lines.append(f"        - {why}")
        for p in getattr(s, "proposals", []) or []:
            lines.append(f"        try {p.path} = {p.proposed:g} (now {p.current:g}): {p.why}")
    return lines or ["no blueprints to suggest"]
