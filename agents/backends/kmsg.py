"""Kernel-log writer for gpu-xid: driver-format XID lines to ``/dev/kmsg`` (or a file in the lab).

On a real host the agent (privileged, hostPID) writes through ``nsenter -t 1 -m`` into the host's
``/dev/kmsg`` and reads it back with ``dmesg``; with any other path (the lab's virtual nodes) it
appends one line per write and reads the file back. Lines look exactly like the driver's:
``<3>NVRM: Xid (PCI:0000:cb:00): 79, pid=1234, name=gameday-ab12cd34, GPU has fallen off the bus.``
Kernel log lines cannot be taken back: reverting a gpu-xid fault stops further lines.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from agents.backends import proc
from agents.errors import BackendFailed

DEV_KMSG = Path("/dev/kmsg")


def xid_line(pci: str, code: int, pid: int, name: str, text: str) -> str:
    """The driver's XID line with kernel priority 3 (err), without a trailing newline."""
    return f"<3>NVRM: Xid (PCI:{pci}): {code}, pid={pid}, name={name}, {text}"


class KmsgWriter:
    """Appends lines to the kernel log (or a stand-in file) and reads them back."""

    def __init__(self, path: Path, nsenter: bool | None = None) -> None:
        self.path = path
        self.nsenter = (path == DEV_KMSG) if nsenter is None else nsenter

    async def write(self, line: str) -> None:
        """Write one record (one write() call, as /dev/kmsg requires)."""
        if "\n" in line:
            raise BackendFailed("a kernel log record must be a single line")
        if self.nsenter:
            argv = ["nsenter", "-t", "1", "-m", "--", "sh", "-c", 'printf "%s\\n" "$1" > "$2"', "sh", line,
                    str(self.path)]
            await proc.check(argv, timeout=5)
            return
        await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BackendFailed(f"cannot open kernel log {self.path}: {exc}") from exc
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    async def read(self) -> str:
        """The kernel log as text (``dmesg`` for /dev/kmsg, the file otherwise; empty if absent)."""
        if self.path == DEV_KMSG:
            return (await proc.check(["dmesg"], timeout=10)).out
        return await asyncio.to_thread(self._read_file)

    def _read_file(self) -> str:
        try:
            return self.path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    async def count(self, needle: str) -> int:
        """How many lines contain ``needle``."""
        return sum(1 for ln in (await self.read()).splitlines() if needle in ln)
