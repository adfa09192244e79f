"""The pod network of a lab on the real control plane: TEST-NET addresses on a bridge link of its own.

The real API server refuses loopback addresses in Endpoints and EndpointSlices ("may not be in the loopback
range"), so the pods the lab runs itself cannot have 127.x addresses. Each lab address slot
k (0-7) gets a /26 of the documentation ranges (RFC 5737 TEST-NET-2 and TEST-NET-3, never routed on the
internet; TEST-NET-1 is left alone, it may be the machine's own network): slots 0-3 take 198.51.100.0/24 in
quarters, slots 4-7 203.0.113.0/24. The block's first addresses are the real lab nodes' InternalIPs, the
rest pod IPs. Each address in use is a /32 on a bridge link ``gdlab<k>`` (a bridge with no ports: the
kernel delivers its addresses locally), so pod programs bind their pod IP as a container would, and
deleting the link removes every address at once. Links are made and changed with iproute2's ``ip``.
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass

from lab.errors import LabError

BLOCKS = (ipaddress.IPv4Network("198.51.100.0/24"), ipaddress.IPv4Network("203.0.113.0/24"))
SLOT_PREFIX = 26
LINK_PREFIX = "gdlab"


class NetworkError(LabError):
    """The lab's pod network could not be made, changed or removed."""


def run_ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run iproute2's ``ip`` with args; NetworkError naming the command when it fails (unless check is False)."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)} failed: {done.stderr.strip() or done.returncode}")
    return done


@dataclass(frozen=True)
class PodNetwork:
    """One slot's addresses and the bridge link that carries those in use."""

    slot: int
    nodes: int = 0

    @property
    def link(self) -> str:
        """The bridge link's name."""
        return f"{LINK_PREFIX}{self.slot}"

    @property
    def cidr(self) -> ipaddress.IPv4Network:
        """The slot's /26."""
        if not 0 <= self.slot < 8:
            raise NetworkError(f"no pod network for slot {self.slot} (slots are 0-7)")
        per_block = 1 << (SLOT_PREFIX - 24)
        block = BLOCKS[self.slot // per_block]
        subnets: list[ipaddress.IPv4Network] = list(block.subnets(new_prefix=SLOT_PREFIX))
        return subnets[self.slot % per_block]

    def hosts(self) -> list[str]:
        """Every usable address of the slot, in order."""
        return [str(h) for h in self.cidr.hosts()]

    def node_ip(self, index: int) -> str:
        """The InternalIP of the index-th real lab node."""
        if not 0 <= index < self.nodes:
            raise NetworkError(f"node {index} is not one of the lab's {self.nodes} real nodes")
        return self.hosts()[index]

    def pod_ips(self) -> list[str]:
        """The addresses pods may get (after the nodes')."""
        return self.hosts()[self.nodes:]

    def exists(self) -> bool:
        """Whether the link is there."""
        return run_ip("link", "show", "dev", self.link, check=False).returncode == 0

    def create(self) -> None:
        """Make the link (replacing a stale one of the same name) with the nodes' addresses on it."""
        self.destroy()
        run_ip("link", "add", self.link, "type", "bridge")
        try:
            run_ip("link", "set", self.link, "up")
            for i in range(self.nodes):
                self.add(self.node_ip(i))
            # pod IPs that live in a sandbox's namespace (lab/sandbox.py) are reached through the bridge
            run_ip("route", "add", str(self.cidr), "dev", self.link)
        except BaseException:
            self.destroy()
            raise

    def add(self, address: str) -> None:
        """Put one of the slot's addresses on the link (idempotent)."""
        self._check(address)
        done = run_ip("addr", "add", f"{address}/32", "dev", self.link, check=False)
        if done.returncode != 0 and "File exists" not in done.stderr:
            raise NetworkError(f"cannot add {address} to {self.link}: {done.stderr.strip()}")

    def remove(self, address: str) -> None:
        """Take an address off the link (idempotent)."""
        self._check(address)
        done = run_ip("addr", "del", f"{address}/32", "dev", self.link, check=False)
        absent = "Cannot assign" in done.stderr or "Address not found" in done.stderr
        if done.returncode != 0 and not absent and self.exists():
            raise NetworkError(f"cannot remove {address} from {self.link}: {done.stderr.strip()}")

    def addresses(self) -> list[str]:
        """The addresses on the link now (empty when it is gone)."""
        done = run_ip("-o", "-4", "addr", "show", "dev", self.link, check=False)
        if done.returncode != 0:
            return []
        return [line.split()[3].split("/")[0] for line in done.stdout.splitlines() if len(line.split()) > 3]

    def destroy(self) -> None:
        """Delete the link and with it every address (idempotent)."""
        if self.exists():
            run_ip("link", "del", self.link)

    def _check(self, address: str) -> None:
        if ipaddress.ip_address(address) not in self.cidr:
            raise NetworkError(f"{address} is not in slot {self.slot}'s pod network {self.cidr}")


class PodAddresses:
    """Hands out a pod network's pod IPs and puts each on the link while it is in use."""

    def __init__(self, network: PodNetwork) -> None:
        self.network = network
        self._free = list(reversed(network.pod_ips()))
        self.in_use: set[str] = set()
        self._on_link: set[str] = set()

    def allocate(self, on_link: bool = True) -> str:
        """A free pod IP, now on the link (unless the pod has a network namespace of its own to hold it)."""
        if not self._free:
            raise NetworkError(f"pod network {self.network.cidr} has no free address left "
                               f"({len(self.in_use)} pods hold one)")
        ip = self._free.pop()
        if on_link:
            self.network.add(ip)
            self._on_link.add(ip)
        self.in_use.add(ip)
        return ip

    def release(self, ip: str) -> None:
        """Take a pod IP off the link (if it was put there) and back into the pool (unknown addresses are ignored)."""
        if ip not in self.in_use:
            return
        if ip in self._on_link:
            self.network.remove(ip)
            self._on_link.discard(ip)
        self.in_use.discard(ip)
        self._free.append(ip)
