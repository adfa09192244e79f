"""Network namespaces for the training job: one per rank, joined through a bridge on TEST-NET addresses.

Layout for job ``<id>`` with N ranks: namespace ``gdtrain-<id>-br`` holds bridge ``br0``; namespace
``gdtrain-<id>-<rank>`` holds ``eth0`` (198.51.100.<10+rank>/24 by default) whose veth peer
``r<rank>`` sits on the bridge. Nothing is created in the host's own network namespace, and
``delete_network`` removes every namespace of the job (their interfaces go with them).
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab.training.errors import NetnsError, NotRootError

PREFIX = "gdtrain-"
DEFAULT_SUBNET = "198.51.100.0/24"
_NETNS_DIR = Path("/run/netns")


@dataclass(frozen=True)
class RankNet:
    """One rank's namespace, interface and address."""

    rank: int
    namespace: str
    ifname: str
    address: str


@dataclass(frozen=True)
class TrainingNetwork:
    """The namespaces of one job."""

    job_id: str
    bridge_namespace: str
    ranks: tuple[RankNet, ...]
    prefix_len: int

    @property
    def namespaces(self) -> list[str]:
        """Every namespace of the job, ranks first."""
        return [r.namespace for r in self.ranks] + [self.bridge_namespace]


def require_root() -> None:
    """Raise NotRootError unless running as root."""
    if os.geteuid() != 0:
        raise NotRootError(
            "network namespaces need root: run as root (or with CAP_NET_ADMIN and CAP_SYS_ADMIN)"
        )


def run_ip(*args: str) -> str:
    """Run one command (ip, iptables...), raising NetnsError with its stderr on failure."""
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"{' '.join(args)}: {exc}") from exc
    if done.returncode != 0:
        raise NetnsError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def in_netns(namespace: str, argv: list[str]) -> list[str]:
    """The argv that runs ``argv`` inside ``namespace``."""
    return ["ip", "netns", "exec", namespace, *argv]


def list_namespaces(job_id: str | None = None) -> list[str]:
    """Existing gdtrain namespaces (of one job when ``job_id`` is given)."""
    if not _NETNS_DIR.is_dir():
        return []
    want = f"{PREFIX}{job_id}-" if job_id else PREFIX
    return sorted(p.name for p in _NETNS_DIR.iterdir() if p.name.startswith(want))


def _plan(job_id: str, ranks: int, subnet: str) -> TrainingNetwork:
    net = ipaddress.ip_network(subnet)
    if not (1 <= ranks <= 64) or net.num_addresses < ranks + 16:
        raise NetnsError(f"cannot place {ranks} ranks in {subnet}")
    if not job_id.isalnum() or len(job_id) > 12:
        raise NetnsError(f"job id {job_id!r} must be alphanumeric, at most 12 characters")
    members = tuple(
        RankNet(r, f"{PREFIX}{job_id}-{r}", "eth0", str(net.network_address + 10 + r)) for r in range(ranks)
    )
    return TrainingNetwork(job_id, f"{PREFIX}{job_id}-br", members, net.prefixlen)


def create_network(job_id: str, ranks: int, subnet: str = DEFAULT_SUBNET) -> TrainingNetwork:
    """Create the job's namespaces, bridge and veth pairs; on any failure remove what was made and raise."""
    require_root()
    net = _plan(job_id, ranks, subnet)
    if list_namespaces(job_id):
        raise NetnsError(f"namespaces of job {job_id} already exist: {list_namespaces(job_id)}")
    br = net.bridge_namespace
    try:
        run_ip("ip", "netns", "add", br)
        run_ip("ip", "-n", br, "link", "add", "br0", "type", "bridge")
        run_ip("ip", "-n", br, "link", "set", "br0", "up")
        for r in net.ranks:
            run_ip("ip", "netns", "add", r.namespace)
            run_ip("ip", "-n", r.namespace, "link", "set", "lo", "up")
            peer = f"r{r.rank}"
            run_ip(
                "ip",
                "-n",
                br,
                "link",
                "add",
                peer,
                "type",
                "veth",
                "peer",
                "name",
                r.ifname,
                "netns",
                r.namespace,
            )
            run_ip("ip", "-n", br, "link", "set", peer, "master", "br0")
            run_ip("ip", "-n", br, "link", "set", peer, "up")
            run_ip("ip", "-n", r.namespace, "addr", "add", f"{r.address}/{net.prefix_len}", "dev", r.ifname)
            run_ip("ip", "-n", r.namespace, "link", "set", r.ifname, "up")
    except BaseException:
        delete_network(net)
        raise
    return net


def delete_network(net: TrainingNetwork) -> list[str]:
    """Delete every namespace of the job (idempotent); returns the names that were removed."""
    removed = []
    for name in net.namespaces:
        if (_NETNS_DIR / name).exists():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30, check=False)
            removed.append(name)
    left = list_namespaces(net.job_id)
    if left:
        raise NetnsError(f"could not delete namespaces {left}")
    return removed


@contextmanager
def training_network(job_id: str, ranks: int, subnet: str = DEFAULT_SUBNET) -> Iterator[TrainingNetwork]:
    """Create the job's network for the duration of a ``with`` block; always deleted afterwards."""
    net = create_network(job_id, ranks, subnet)
    try:
        yield net
    finally:
        delete_network(net)
