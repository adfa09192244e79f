"""XID lines: the driver regex, NVIDIA's catalogue of actions, and an incremental kernel-log file tail.

A line matches ``NVRM: Xid.*?: (\\d+),`` (FAULTS.md §3), e.g.
``<3>NVRM: Xid (PCI:0000:cb:00): 79, pid=1797828, name=pt_main_thread, GPU has fallen off the bus.``
Lines carry no timestamp of their own in the lab's kernel-log files, so a line's time is the file's
modification time when the tail read it (exact for one append per poll); a line that starts with an
ISO-8601 time (syslog/journal export form) uses that instead.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

XID_RE = re.compile(r"NVRM: Xid.*?: (\d+),")
PCI_RE = re.compile(r"\(PCI:([0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2})")
_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\s")

Action = Literal["restart-app", "ignore", "reset-gpu", "reboot", "report"]

# NVIDIA's XID catalogue (FAULTS.md §3) as NVSentinel-style actions; 48 (double-bit ECC) and 74 (NVLink)
# follow their workflows to the node-level remedy: cordon, drain and reboot.
ACTIONS: dict[int, Action] = {
    13: "restart-app", 31: "restart-app", 94: "restart-app",
    43: "ignore", 45: "ignore", 63: "ignore", 68: "ignore", 92: "ignore",
    46: "reset-gpu", 62: "reset-gpu", 64: "reset-gpu", 95: "reset-gpu", 109: "reset-gpu",
    119: "reset-gpu", 120: "reset-gpu", 140: "reset-gpu",
    79: "reboot", 48: "reboot", 74: "reboot",
    61: "report",
}  # fmt: skip


def action_for(code: int) -> Action:
    """What the catalogue asks for on XID ``code`` (unknown codes are reported, nothing more)."""
    return ACTIONS.get(code, "report")


@dataclass(frozen=True)
class XidEvent:
    """One XID line seen in a node's kernel log."""

    node: str
    code: int
    pci: str | None
    line: str
    logged_at: float


def parse_line(node: str, line: str, default_time: float) -> XidEvent | None:
    """The XID in ``line``, or None when it is not an XID line."""
    m = XID_RE.search(line)
    if not m:
        return None
    pci = PCI_RE.search(line)
    logged_at = default_time
    iso = _ISO.match(line)
    if iso:
        try:
            logged_at = datetime.fromisoformat(iso.group(1)).timestamp()
        except ValueError:
            pass
    return XidEvent(node, int(m.group(1)), pci.group(1).lower() if pci else None, line.strip(), logged_at)


class KmsgTail:
    """Reads lines appended to a kernel-log file since the last poll (handles truncation and partial lines)."""

    def __init__(self, node: str, path: Path, from_start: bool = False) -> None:
        self.node = node
        self.path = path
        self._buf = b""
        try:
            self._offset = 0 if from_start else path.stat().st_size
        except FileNotFoundError:
            self._offset = 0

    def poll(self) -> list[XidEvent]:
        """XID events in lines appended since the last call."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return []
        if st.st_size < self._offset:
            self._offset, self._buf = 0, b""
        if st.st_size == self._offset:
            return []
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        self._offset += len(chunk)
        *lines, self._buf = (self._buf + chunk).split(b"\n")
        mtime = st.st_mtime
        events = []
        for raw in lines:
            event = parse_line(self.node, raw.decode(errors="replace"), mtime)
            if event is not None:
                events.append(event)
        return events
