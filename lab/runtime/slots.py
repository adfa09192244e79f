"""Address slots: several labs on one machine without address clashes.

Slot k (0-7) gives a lab Service addresses in 127.(96+k).0.0/16 (kube-dns at 127.(96+k).0.10) and its own
nodes and pods a /26 of TEST-NET (lab/network.py). ``up`` claims the first free slot with an exclusive file in
the temp dir naming its state dir; a slot whose lab has no live process left is reclaimed.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path

from lab.errors import LabError
from lab.procs import pid_alive

SLOTS = 8


def registry_dir() -> Path:
    """Where slot claims live."""
    path = Path(tempfile.gettempdir()) / "gameday-lab-slots"
    path.mkdir(exist_ok=True)
    return path


def service_prefix(slot: int) -> str:
    """The first three octets (with trailing dot) of a slot's Service addresses."""
    return f"127.{96 + slot}.0."


def _addresses_free(slot: int) -> bool:
    for kind, port, last in ((socket.SOCK_DGRAM, 53, "10"), (socket.SOCK_STREAM, 80, "20")):
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((service_prefix(slot) + last, port))
            except OSError:
                return False
    return True


def _stale(claim: Path) -> bool:
    try:
        info = json.loads(claim.read_text())
    except (OSError, ValueError):
        return True
    if pid_alive(int(info.get("pid", 0))):
        return False
    try:
        pids = json.loads((Path(info["state_dir"]) / "pids.json").read_text())
    except (OSError, ValueError, KeyError):
        return True
    return not any(pid_alive(int(p)) for p in pids.values())


def claim(state_dir: Path, wanted: int | None = None) -> int:
    """Claim a free slot for the lab in state_dir (its own earlier claim is reused)."""
    reg = registry_dir()
    for slot in [wanted] if wanted is not None else range(SLOTS):
        path = reg / f"{slot}.json"
        if path.exists():
            try:
                owner = json.loads(path.read_text()).get("state_dir")
            except (OSError, ValueError):
                owner = None
            if owner != str(state_dir) and not _stale(path):
                continue
            path.unlink(missing_ok=True)
        if not _addresses_free(slot):
            continue
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump({"state_dir": str(state_dir), "pid": os.getpid()}, fh)
        return slot
    raise LabError(f"no free lab address slot (of {SLOTS}); stop a lab with `python -m lab down`")


def release(state_dir: Path) -> None:
    """Drop every slot claim that names state_dir."""
    for path in registry_dir().glob("*.json"):
        try:
            if json.loads(path.read_text()).get("state_dir") == str(state_dir):
                path.unlink(missing_ok=True)
        except (OSError, ValueError):
            continue
