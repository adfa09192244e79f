"""This agent's limits on top of the protocol: max TTL, allowed peer CIDRs and interfaces, max faults."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from agents.errors import Invalid
from agents.protocol import InjectRequest, PartitionParams

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Limits:
    """What an inject request may ask for on this node."""

    max_ttl_seconds: float = 600.0
    allowed_cidrs: tuple[Network, ...] = ()
    allowed_interfaces: tuple[str, ...] = ()
    max_active: int = 32

    def check_ttl(self, ttl: float) -> None:
        """Refuse a lease longer than this agent allows."""
        if ttl > self.max_ttl_seconds:
            raise Invalid(f"ttl_seconds {ttl:g} exceeds this agent's maximum of {self.max_ttl_seconds:g}s")

    def check(self, req: InjectRequest, active: int) -> None:
        """Refuse anything outside the limits, with a message saying which and why."""
        self.check_ttl(req.ttl_seconds)
        if active >= self.max_active:
            raise Invalid(f"this agent already holds {active} faults (maximum {self.max_active})")
        if isinstance(req.params, PartitionParams):
            self._check_partition(req.params)

    def _check_partition(self, p: PartitionParams) -> None:
        for peer in p.peers:
            net = ipaddress.ip_network(peer, strict=False)
            if not any(net.version == a.version and net.subnet_of(a) for a in self.allowed_cidrs):  # type: ignore[arg-type]
                allowed = ", ".join(str(a) for a in self.allowed_cidrs) or "none (start the agent with --allow-cidr)"
                raise Invalid(f"peer {peer} is outside the allowed CIDRs: {allowed}")
        if p.interface is not None and p.interface not in self.allowed_interfaces:
            allowed = ", ".join(self.allowed_interfaces) or "none (start the agent with --allow-interface)"
            raise Invalid(f"interface {p.interface!r} is not allowed; allowed: {allowed}")
