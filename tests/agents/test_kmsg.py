"""The kernel-log writer: driver-format lines, one record per write, read back."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from agents.backends.kmsg import KmsgWriter, xid_line
from agents.errors import BackendFailed


def test_xid_line_has_the_driver_format() -> None:
    """The line matches the driver's format and FAULTS.md's detector regex."""
    line = xid_line("0000:cb:00", 79, 1797828, "pt_main_thread", "GPU has fallen off the bus.")
    assert line == "<3>NVRM: Xid (PCI:0000:cb:00): 79, pid=1797828, name=pt_main_thread, GPU has fallen off the bus."
    m = re.search(r"NVRM: Xid.*?: (\d+),", line)
    assert m is not None and m.group(1) == "79"


def test_file_writer_appends_and_counts(tmp_path: Path) -> None:
    """Lines are appended to the stand-in file and counted back by a marker."""
    w = KmsgWriter(tmp_path / "kmsg")
    assert not w.nsenter

    async def go() -> int:
        await w.write("a name=x, 1")
        await w.write("b name=y, 2")
        await w.write("c name=x, 3")
        return await w.count("name=x,")

    assert asyncio.run(go()) == 2


def test_multiline_record_is_refused(tmp_path: Path) -> None:
    """A record with a newline would forge a second kernel line: refused."""
    with pytest.raises(BackendFailed):
        asyncio.run(KmsgWriter(tmp_path / "k").write("a\nb"))


def test_dev_kmsg_goes_through_nsenter() -> None:
    """The real kernel log is written through nsenter into the host's mount namespace."""
    assert KmsgWriter(Path("/dev/kmsg")).nsenter
