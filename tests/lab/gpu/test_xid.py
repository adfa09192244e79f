"""Tests for lab.gpu.xid: the driver regex, the catalogue and the incremental kernel-log tail."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.gpu.xid import KmsgTail, action_for, parse_line


@pytest.mark.parametrize(
    ("line", "code", "pci"),
    [
        ("<3>NVRM: Xid (PCI:0000:cb:00): 79, pid=1797828, name=pt_main_thread, GPU has fallen off the bus.", 79,
         "0000:cb:00"),
        ("NVRM: Xid (PCI:0000:3B:00): 13, Graphics Exception: ESR 0x405840=0x0", 13, "0000:3b:00"),
        ("2026-11-23T10:00:00+00:00 node kernel: NVRM: Xid (PCI:0000:18:00): 94, pid=1, name=x, Contained", 94,
         "0000:18:00"),
    ],
)  # fmt: skip
def test_driver_line_forms_parse(line: str, code: int, pci: str) -> None:
    """Current, old and syslog-prefixed driver lines all yield the code and PCI address."""
    event = parse_line("n", line, 123.0)
    assert event is not None and (event.code, event.pci) == (code, pci)


def test_syslog_time_wins_over_file_time() -> None:
    """A line with an ISO time uses it; a bare line uses the time given; a non-XID line is None."""
    stamped = parse_line("n", "2026-11-23T10:00:00+00:00 k: NVRM: Xid (PCI:0000:18:00): 94, x", 5.0)
    bare = parse_line("n", "NVRM: Xid (PCI:0000:18:00): 94, x", 5.0)
    assert stamped is not None and stamped.logged_at == 1795428000.0
    assert bare is not None and bare.logged_at == 5.0
    assert parse_line("n", "usb 1-1: new high-speed USB device", 5.0) is None


def test_catalogue_actions() -> None:
    """The catalogue maps codes to NVSentinel-style actions; unknown codes are reported only."""
    assert [action_for(c) for c in (13, 31, 94)] == ["restart-app"] * 3
    assert [action_for(c) for c in (43, 63, 92)] == ["ignore"] * 3
    assert {action_for(c) for c in (46, 62, 64, 95, 109, 119, 120, 140)} == {"reset-gpu"}
    assert [action_for(c) for c in (79, 48, 74)] == ["reboot"] * 3
    assert action_for(999) == "report"


def test_tail_reads_only_new_complete_lines_and_survives_truncation(tmp_path: Path) -> None:
    """Old lines are skipped, a partial line waits for its end, and a truncated file is read from the start."""
    path = tmp_path / "kmsg"
    path.write_text("NVRM: Xid (PCI:0000:18:00): 13, old\n")
    tail = KmsgTail("n", path)
    assert tail.poll() == []
    with path.open("a") as f:
        f.write("NVRM: Xid (PCI:0000:18:00): 79, new\nNVRM: Xid (PCI:0000:18:00): 4")
    assert [e.code for e in tail.poll()] == [79]
    with path.open("a") as f:
        f.write("3, rest\n")
    assert [e.code for e in tail.poll()] == [43]
    path.write_text("NVRM: Xid (PCI:0000:18:00): 94, again\n")
    assert [e.code for e in tail.poll()] == [94]
