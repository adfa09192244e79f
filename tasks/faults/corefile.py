"""Pure Corefile editing for the coredns-outage ``corefile`` mode: add fault server blocks, find them again.

The edit prepends one server block per chosen zone, between ``# gameday:begin <id>`` / ``# gameday:end <id>``
markers, so CoreDNS routes those zones to it (the most specific zone wins) and every other zone is untouched.
The block uses ``erratic`` (``drop N``, ``delay N DURATION``) and, for SERVFAIL, which erratic has no property
for, the ``template`` plugin: ``template ANY ANY { rcode SERVFAIL }``.
Rollback never parses the edit back out: it restores the original text saved in the ledger, byte for byte.
"""

from __future__ import annotations

import re

from blueprints.faults import CorefileEdit
from tasks.errors import InjectionFailed

_BLOCK_KEY = re.compile(r"^([^\s{#][^{#]*?)\s*\{\s*$")


def server_block_keys(text: str) -> list[str]:
    """The keys of the Corefile's top-level server blocks (e.g. ``.:53``, ``example.org:53``)."""
    keys: list[str] = []
    depth = 0
    for line in text.splitlines():
        stripped = line.split("#", 1)[0].strip()
        if depth == 0:
            m = _BLOCK_KEY.match(stripped)
            if m:
                keys.extend(m.group(1).split())
        depth += stripped.count("{") - stripped.count("}")
    return keys


def _zone_port(key: str) -> tuple[str, str]:
    key = key.split("://", 1)[-1]
    zone, _, port = key.rpartition(":") if ":" in key else (key, "", "53")
    return zone.rstrip(".").lower() or ".", port or "53"


def default_port(text: str) -> str:
    """The port of the first server block (53 when none says)."""
    keys = server_block_keys(text)
    return _zone_port(keys[0])[1] if keys else "53"


def _plugin_lines(edit: CorefileEdit) -> list[str]:
    n = edit.every
    if edit.action == "drop":
        return ["erratic {", f"    drop {n}", "}"]
    if edit.action == "delay":
        ms = max(1, int(edit.delay.total_seconds() * 1000))
        return ["erratic {", f"    delay {n} {ms}ms", "}"]
    return ["template ANY ANY {", "    rcode SERVFAIL", "}"]


def fault_blocks(edit: CorefileEdit, tag: str, port: str) -> str:
    """The marked server blocks the edit adds (ending with a newline)."""
    body = _plugin_lines(edit)
    out = [f"# gameday:begin {tag}"]
    for zone in edit.zones:
        z = zone.rstrip(".").lower() or "."
        out.append(f"{z}:{port} {{")
        out.extend(f"    {line}" for line in ["errors", *body])
        out.append("}")
    out.append(f"# gameday:end {tag}")
    return "\n".join(out) + "\n"


def apply_edit(original: str, edit: CorefileEdit, tag: str) -> str:
    """The Corefile with the fault blocks prepended; InjectionFailed if a zone already has its own block."""
    port = default_port(original)
    existing = {_zone_port(k) for k in server_block_keys(original)}
    clash = [z for z in edit.zones if ((z.rstrip(".").lower() or "."), port) in existing]
    if clash:
        raise InjectionFailed(f"the Corefile already has a server block for {clash} on port {port}; "
                              "choose other zones")
    return fault_blocks(edit, tag, port) + original


def has_edit(text: str, tag: str) -> bool:
    """Whether the text carries the fault blocks marked ``tag``."""
    return f"# gameday:begin {tag}" in text and f"# gameday:end {tag}" in text


def strip_edit(text: str, tag: str) -> str:
    """The text without the blocks marked ``tag`` (for reporting; rollback restores the saved original)."""
    pattern = re.compile(rf"# gameday:begin {re.escape(tag)}\n.*?# gameday:end {re.escape(tag)}\n", re.DOTALL)
    return pattern.sub("", text)
