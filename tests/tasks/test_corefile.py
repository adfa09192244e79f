"""Corefile edit and restore for coredns-outage's corefile mode."""

from __future__ import annotations

from datetime import timedelta

import pytest

from blueprints.faults import CorefileEdit
from tasks.errors import InjectionFailed
from tasks.faults.corefile import apply_edit, has_edit, server_block_keys, strip_edit

KUBEADM = """.:53 {
    errors
    health {
       lameduck 5s
    }
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
    cache 30
    reload
}
"""


def test_server_block_keys_only_top_level() -> None:
    """Only top-level server block keys are found, not nested plugin blocks."""
    assert server_block_keys(KUBEADM) == [".:53"]
    assert server_block_keys("a.org:5353 b.org:5353 {\n}\n" + KUBEADM) == ["a.org:5353", "b.org:5353", ".:53"]


def test_edit_adds_marked_blocks_and_keeps_original_text() -> None:
    """The edit prepends one marked block per zone, and the original text follows unchanged."""
    edit = CorefileEdit(zones=["example.org", "svc.test."], action="servfail", every=2)
    out = apply_edit(KUBEADM, edit, "run-1/f0")
    assert out.endswith(KUBEADM) and has_edit(out, "run-1/f0")
    assert server_block_keys(out) == ["example.org:53", "svc.test:53", ".:53"]
    assert "rcode SERVFAIL" in out and "servfail 2" not in out
    assert strip_edit(out, "run-1/f0") == KUBEADM


@pytest.mark.parametrize(("action", "needle"), [
    ("drop", "erratic {\n        drop 1"), ("delay", "erratic {\n        delay 1 1500ms"),
    ("servfail", "template ANY ANY {\n        rcode SERVFAIL"),
])
def test_edit_renders_each_action(action: str, needle: str) -> None:
    """drop/delay use erratic; SERVFAIL, which erratic has no property for, the template plugin."""
    edit = CorefileEdit(zones=["example.org"], action=action, delay=timedelta(seconds=1.5))  # type: ignore[arg-type]
    assert needle in apply_edit(KUBEADM, edit, "t")


def test_edit_uses_the_existing_port() -> None:
    """Fault blocks listen on the port of the Corefile's first server block."""
    out = apply_edit(KUBEADM.replace(".:53", ".:1053"), CorefileEdit(zones=["x.org"]), "t")
    assert "x.org:1053 {" in out


def test_edit_refuses_a_zone_that_has_its_own_block() -> None:
    """A zone the Corefile already serves in its own block would clash: refused before touching anything."""
    with pytest.raises(InjectionFailed, match="already has a server block"):
        apply_edit("example.org:53 {\n  whoami\n}\n" + KUBEADM, CorefileEdit(zones=["example.org"]), "t")
