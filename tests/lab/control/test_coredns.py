"""The real CoreDNS pod program's argument translation (its process shares this machine's filesystem)."""

from __future__ import annotations

from lab.control.coredns import translate


def test_container_paths_under_a_mount_become_the_volumes_directory() -> None:
    """An argument under a volume's mount path points into the volume's directory; the longest mount wins; other
    arguments are left as they are."""
    volumes = {"/etc/coredns": "/state/pods/u/volumes/config-volume", "/etc": "/state/pods/u/volumes/etc"}
    assert translate(["-conf", "/etc/coredns/Corefile", "-dns.port", "53", "/etc/hosts", "/etcetera"], volumes) == [
        "-conf", "/state/pods/u/volumes/config-volume/Corefile", "-dns.port", "53", "/state/pods/u/volumes/etc/hosts",
        "/etcetera"]
    assert translate(["/etc/coredns"], {"/etc/coredns/": "/v"}) == ["/v"]
