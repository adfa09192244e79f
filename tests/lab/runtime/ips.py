"""Address checks shared by the runtime tests: which lab slot's pod range an address falls in."""

from __future__ import annotations

import ipaddress

from lab.runtime.slots import pod_first_octet


def in_a_slot_pod_range(address: str) -> bool:
    """Whether ``address`` lies in the pod range (127.(10+2k).0.0/15) of one of the 8 lab slots."""
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(f"127.{pod_first_octet(k)}.0.0/15") for k in range(8))
