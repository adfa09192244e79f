"""Tests for lab.runtime.ipam."""

from __future__ import annotations

from lab.runtime.ipam import IpPool


def test_addresses_are_unique_loopback_and_reused() -> None:
    """Allocated IPs are distinct 127.10/15 addresses without .0/.255; released ones come back."""
    pool = IpPool()
    ips = [pool.allocate() for _ in range(600)]
    assert len(set(ips)) == 600
    assert all(ip.startswith("127.10.") and not ip.endswith((".0", ".255")) for ip in ips)
    pool.release(ips[5])
    assert pool.allocate() == ips[5]
    pool.release("10.0.0.1")  # unknown: ignored
    assert len(pool.in_use) == 600
