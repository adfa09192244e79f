"""The stock blueprints shipped in ``blueprints/library``, and finding a blueprint by stock name or path."""

from __future__ import annotations

from pathlib import Path

LIBRARY = Path(__file__).resolve().parent / "library"


def stock_names() -> list[str]:
    """Names of the stock blueprints."""
    return sorted(p.stem for p in LIBRARY.glob("*.yaml"))


def resolve(blueprint: str | Path) -> Path:
    """A file path as given when it exists, else the stock blueprint of that name, else the path as given."""
    path = Path(blueprint)
    if not path.exists() and (LIBRARY / f"{blueprint}.yaml").exists():
        return LIBRARY / f"{blueprint}.yaml"
    return path
