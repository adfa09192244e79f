"""Direct iptables partitions between rank namespaces (what the node agent's nccl-partition does on a node).

Rules live in a chain ``GDTRAIN-PART`` inside the rank namespaces only, matched on peer IPs (gloo and
NCCL data ports are ephemeral). DROP goes on INPUT and OUTPUT (collectives hang until the process-group
timeout); REJECT goes on OUTPUT only, as a TCP reset (FAULTS.md §5: REJECT on INPUT+OUTPUT acts like DROP).
Undo: ``heal`` flushes and removes the chain; deleting the namespaces removes it too.
"""

from __future__ import annotations

from typing import Literal

from lab.training.netns import TrainingNetwork, in_netns, run_ip

CHAIN = "GDTRAIN-PART"
Action = Literal["DROP", "REJECT"]


def _ensure_chain(namespace: str) -> None:
    ipt = in_netns(namespace, ["iptables", "-w"])
    existing = run_ip(*ipt, "-S")
    if f"-N {CHAIN}" not in existing:
        run_ip(*ipt, "-N", CHAIN)
    for hook in ("INPUT", "OUTPUT"):
        if f"-A {hook} -j {CHAIN}" not in existing:
            run_ip(*ipt, "-I", hook, "1", "-j", CHAIN)


def partition(net: TrainingNetwork, action: Action = "DROP", side: list[int] | None = None) -> None:
    """Cut the ranks in ``side`` (default: rank 0) from all other ranks, in both directions."""
    left = set(side if side is not None else [0])
    for member in net.ranks:
        peers = [r.address for r in net.ranks if (r.rank in left) != (member.rank in left)]
        if not peers:
            continue
        _ensure_chain(member.namespace)
        ipt = in_netns(member.namespace, ["iptables", "-w"])
        for peer in peers:
            if action == "DROP":
                run_ip(*ipt, "-A", CHAIN, "-s", peer, "-j", "DROP")
                run_ip(*ipt, "-A", CHAIN, "-d", peer, "-j", "DROP")
            else:
                run_ip(
                    *ipt, "-A", CHAIN, "-d", peer, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"
                )


def heal(net: TrainingNetwork) -> None:
    """Remove every partition rule (idempotent)."""
    for member in net.ranks:
        ipt = in_netns(member.namespace, ["iptables", "-w"])
        existing = run_ip(*ipt, "-S")
        for hook in ("INPUT", "OUTPUT"):
            while f"-A {hook} -j {CHAIN}" in existing:
                run_ip(*ipt, "-D", hook, "-j", CHAIN)
                existing = run_ip(*ipt, "-S")
        if f"-N {CHAIN}" in existing:
            run_ip(*ipt, "-F", CHAIN)
            run_ip(*ipt, "-X", CHAIN)


def rule_count(net: TrainingNetwork) -> int:
    """How many partition rules are in place across the job's namespaces."""
    total = 0
    for member in net.ranks:
        rules = run_ip(*in_netns(member.namespace, ["iptables", "-w", "-S"]))
        total += sum(1 for line in rules.splitlines() if line.startswith(f"-A {CHAIN} "))
    return total
