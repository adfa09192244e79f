"""Firewall backends for nccl-partition: iptables (named chains) and nft (a table per fault).

Blast radius: only packets to/from the given peers (optionally one interface, optionally a port range)
on this node. Undo: ``IptablesFirewall`` adds chains ``GD-<tag>-I`` (jumped from INPUT) and
``GD-<tag>-O`` (jumped from OUTPUT) in one atomic ``iptables-restore --noflush`` batch per address
family, and revert removes exactly those jumps and chains (again one batch);
``NftFirewall`` adds table ``inet gameday_<tag>`` and revert deletes it. Both reverts are idempotent.
REJECT answers TCP with ``tcp-reset``. FAULTS.md §5 found REJECT on INPUT+OUTPUT behaving like DROP:
the RST that REJECT fabricates is itself caught by the other direction's rule. So both chains first
let TCP RSTs through (RETURN), and REJECT then fails connections fast in both directions. ``netns`` runs every command inside a network namespace
(``ip netns exec``): how the lab and the tests partition namespaces without touching the host.
"""

from __future__ import annotations

import ipaddress
from typing import Protocol

from agents.backends import proc
from agents.errors import AgentFailure, BackendFailed
from agents.protocol import PartitionParams

_LET_RST = ("-p", "tcp", "--tcp-flags", "RST", "RST", "-j", "RETURN")
_GONE = ("No chain/target/match", "does not exist", "No such file or directory", "Bad rule")


class Firewall(Protocol):
    """Apply, revert and check one partition, identified by ``tag``."""

    async def apply(self, tag: str, p: PartitionParams) -> None:
        """Install the partition (all or nothing)."""

    async def revert(self, tag: str) -> None:
        """Remove exactly what ``apply`` added; idempotent."""

    async def present(self, tag: str) -> tuple[bool, str]:
        """Whether the partition is in place, and a line describing what was found."""


def _split(peers: list[str]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {4: [], 6: []}
    for p in peers:
        out[ipaddress.ip_network(p, strict=False).version].append(p)
    return out


class _Base:
    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns

    def _argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv


class IptablesFirewall(_Base):
    """Per-fault chains jumped to from INPUT/OUTPUT (iptables for IPv4 peers, ip6tables for IPv6)."""

    @staticmethod
    def chains(tag: str) -> tuple[str, str]:
        """The ingress and egress chain names of a fault."""
        return f"GD-{tag}-I", f"GD-{tag}-O"

    async def _ipt(self, family: int, *args: str, tolerate: bool = False) -> proc.Result:
        binary = "iptables" if family == 4 else "ip6tables"
        res = await proc.run(self._argv([binary, "-w", "5", *args]))
        if res.rc != 0 and not (tolerate and any(g in res.err for g in _GONE)):
            raise BackendFailed(f"{binary} {' '.join(args)} failed (rc={res.rc}): {res.err.strip()}")
        return res

    @staticmethod
    def _rules(p: PartitionParams, peer: str, side: str) -> list[list[str]]:
        addr = ["-s", peer] if side == "I" else ["-d", peer]
        iface = (["-i", p.interface] if side == "I" else ["-o", p.interface]) if p.interface else []
        if p.port_range:
            span = f"{p.port_range[0]}:{p.port_range[1]}"
            matches = [["-p", proto, f"--{d}", span] for proto in ("tcp", "udp") for d in ("dport", "sport")]
        else:
            matches = [[]]
        out = []
        for m in matches:
            base = [*addr, *iface, *m]
            if p.action == "DROP":
                out.append([*base, "-j", "DROP"])
            elif not m or m[1] == "tcp":
                out.append([*base, *([] if m else ["-p", "tcp"]), "-j", "REJECT", "--reject-with", "tcp-reset"])
                if not m:
                    out.append([*base, "-j", "REJECT"])
            else:
                out.append([*base, "-j", "REJECT"])
        return out

    async def _restore(self, family: int, lines: list[str]) -> None:
        """Apply ``lines`` to the filter table in one atomic ``iptables-restore --noflush`` batch."""
        binary = "iptables-restore" if family == 4 else "ip6tables-restore"
        script = "\n".join(["*filter", *lines, "COMMIT", ""]).encode()
        res = await proc.run(self._argv([binary, "--noflush", "-w", "5"]), stdin=script)
        if res.rc != 0:
            raise BackendFailed(f"{binary} failed (rc={res.rc}): {res.err.strip()}")

    def _batch(self, tag: str, p: PartitionParams, peers: list[str]) -> list[str]:
        chain_in, chain_out = self.chains(tag)
        lines: list[str] = []
        for chain, side, hook, wanted in ((chain_in, "I", "INPUT", ("both", "ingress")),
                                          (chain_out, "O", "OUTPUT", ("both", "egress"))):
            if p.direction not in wanted:
                continue
            lines.append(f":{chain} - [0:0]")
            if p.action == "REJECT":
                lines.append(" ".join(["-A", chain, *_LET_RST]))
            lines += [" ".join(["-A", chain, *rule]) for peer in peers for rule in self._rules(p, peer, side)]
            lines.append(f"-I {hook} 1 -j {chain}")
        return lines

    async def apply(self, tag: str, p: PartitionParams) -> None:
        """Create, fill and jump to the chains: one atomic batch per address family."""
        try:
            for family, peers in _split(p.peers).items():
                if peers:
                    await self._restore(family, self._batch(tag, p, peers))
        except BaseException:
            await self.revert(tag)
            raise

    async def revert(self, tag: str) -> None:
        """Delete the jumps (every copy), flush and delete both chains, for each family that has them."""
        for family in (4, 6):
            try:
                rules = (await self._ipt(family, "-S")).out.splitlines()
            except AgentFailure:
                continue  # no ip6tables, or the namespace is gone (and its rules with it)
            lines: list[str] = []
            for chain, hook in zip(self.chains(tag), ("INPUT", "OUTPUT"), strict=True):
                jumps = sum(1 for ln in rules if ln.startswith(f"-A {hook} ") and ln.split()[-1:] == [chain])
                lines += [f"-D {hook} -j {chain}"] * jumps
                if f"-N {chain}" in rules:
                    lines += [f"-F {chain}", f"-X {chain}"]
            if lines:
                await self._restore(family, lines)

    async def present(self, tag: str) -> tuple[bool, str]:
        """True when at least one chain exists with rules and is jumped to."""
        found = []
        for family in (4, 6):
            try:
                rules = (await self._ipt(family, "-S")).out.splitlines()
            except AgentFailure:
                continue
            for chain in self.chains(tag):
                n = sum(1 for ln in rules if ln.startswith(f"-A {chain} "))
                jumped = any(ln.endswith(f"-j {chain}") and not ln.startswith(f"-A {chain} ") for ln in rules)
                if n and jumped:
                    found.append(f"{'ip6tables' if family == 6 else 'iptables'} {chain}: {n} rules")
        return bool(found), "; ".join(found) or f"no chain GD-{tag}-* found"


class NftFirewall(_Base):
    """One nft table per fault, ``inet gameday_<tag>``, with input/output base chains."""

    @staticmethod
    def table(tag: str) -> str:
        """The table's name."""
        return f"gameday_{tag}"

    @staticmethod
    def _rules(p: PartitionParams, side: str) -> list[str]:
        out = []
        ports = [f"th dport {p.port_range[0]}-{p.port_range[1]}", f"th sport {p.port_range[0]}-{p.port_range[1]}"] \
            if p.port_range else [""]
        iface = (f'iifname "{p.interface}"' if side == "in" else f'oifname "{p.interface}"') if p.interface else ""
        for family, peers in _split(p.peers).items():
            if not peers:
                continue
            fam = "ip" if family == 4 else "ip6"
            addr = f"{fam} {'saddr' if side == 'in' else 'daddr'} {{ {', '.join(peers)} }}"
            for port in ports:
                base = " ".join(x for x in (addr, iface, port) if x)
                if p.action == "DROP":
                    out.append(f"{base} drop")
                else:
                    out.append(f"{base} meta l4proto tcp reject with tcp reset")
                    out.append(f"{base} reject")
        return out

    async def apply(self, tag: str, p: PartitionParams) -> None:
        """Load the whole table atomically with ``nft -f -``."""
        chains = []
        lead = ["tcp flags & rst == rst accept"] if p.action == "REJECT" else []
        if p.direction in ("both", "ingress"):
            chains.append(("input", self._rules(p, "in"), lead))
        if p.direction in ("both", "egress"):
            chains.append(("output", self._rules(p, "out"), lead))
        body = [f"table inet {self.table(tag)} {{"]
        for hook, rules, lead in chains:
            body.append(f"  chain {hook} {{ type filter hook {hook} priority -10; policy accept;")
            body.extend(f"    {r}" for r in (*lead, *rules))
            body.append("  }")
        body.append("}")
        res = await proc.run(self._argv(["nft", "-f", "-"]), stdin="\n".join(body).encode())
        if res.rc != 0:
            await self.revert(tag)
            raise BackendFailed(f"nft -f failed (rc={res.rc}): {res.err.strip()}")

    async def revert(self, tag: str) -> None:
        """Delete the table (nothing else was added); fine when it is already gone."""
        res = await proc.run(self._argv(["nft", "delete", "table", "inet", self.table(tag)]))
        if res.rc != 0 and not any(g in res.err for g in _GONE):
            raise BackendFailed(f"nft delete table failed (rc={res.rc}): {res.err.strip()}")

    async def present(self, tag: str) -> tuple[bool, str]:
        """True when the table exists and has rules."""
        res = await proc.run(self._argv(["nft", "list", "table", "inet", self.table(tag)]))
        if res.rc != 0:
            return False, f"no table inet {self.table(tag)}"
        n = sum(1 for ln in res.out.splitlines() if ln.strip().endswith(("drop", "reject", "reset")))
        return n > 0, f"nft table inet {self.table(tag)}: {n} rules"
