"""The agent's durable writes (its state file, the fake GPUs' state): a reader sees the old file or the new one,
never a torn one, and after a crash the same. (``tasks/files.py`` is the runner's twin: agents import nothing of
``tasks``.)"""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, fsync it, rename it over ``path`` and fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
