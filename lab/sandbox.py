"""A pod sandbox for programs that need a network of their own: a network namespace on the slot's pod network.

What a container runtime and the CNI ``bridge`` plugin give a pod: a network namespace (``gdpod<slot>-<id>``) with its
own loopback and an ``eth0`` holding the pod IP (in the slot's /26), joined by a veth pair to the slot's bridge
``gdlab<k>`` (lab/network.py), with its default route via the pod's node address on that bridge. Inside, a program
can bind any port on any address (CoreDNS binds ``:53``, ``:8080``, ``:8181`` and ``:9153`` with no ``bind``
directive) without meeting another pod's; the host reaches the pod IP through the bridge, the pod reaches the
host's addresses on the bridge (the nodes', the API server's) without IP forwarding. Programs are started inside
with ``ip netns exec`` and a private mount namespace in which files are placed at fixed paths (a service-account
token at ``/var/run/secrets/kubernetes.io/serviceaccount``) on a tmpfs over ``/run``, so nothing on the host
changes. ``destroy`` deletes the namespace and the veth pair with it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from lab.network import NetworkError, PodNetwork, run_ip

NETNS_PREFIX = "gdpod"
VETH_PREFIX = "gdv"
ID_LENGTH = 10
SERVICE_ACCOUNT_DIR = "/run/secrets/kubernetes.io/serviceaccount"
"""Where in-cluster clients read the token, CA and namespace (``/var/run`` is ``/run``)."""

_MOUNT_SCRIPT = (
    'set -e; mount -t tmpfs -o mode=0755 gameday-pod /run; mkdir -p "$2"; mount --bind "$1" "$2"; '
    'mount -o remount,bind,ro "$2"; shift 2; exec "$@"'
)


def host_network_command(argv: list[str], files_dir: Path, files_at: str = SERVICE_ACCOUNT_DIR) -> list[str]:
    """The command line that runs argv in this machine's network (a ``hostNetwork`` pod), with files_dir mounted
    read-only at files_at in a private mount namespace."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _MOUNT_SCRIPT, "sh", str(files_dir),
            files_at, *argv]


def sandbox_id(uid: str) -> str:
    """A short stable id for a pod (fits a link name's 15 characters with its prefix)."""
    return hashlib.sha256(uid.encode()).hexdigest()[:ID_LENGTH]


@dataclass(frozen=True)
class PodSandbox:
    """One pod's network namespace: its pod IP on eth0, bridged to the slot's pod network."""

    network: PodNetwork
    uid: str
    ip: str
    gateway: str

    @property
    def netns(self) -> str:
        """The network namespace's name (``ip netns``): ``gdpod<slot>-<id>``."""
        return f"{NETNS_PREFIX}{self.network.slot}-{sandbox_id(self.uid)}"

    @property
    def veth(self) -> str:
        """The host end of the veth pair (a port of the slot's bridge): ``gdv<slot><id>``."""
        return f"{VETH_PREFIX}{self.network.slot}{sandbox_id(self.uid)}"

    def exists(self) -> bool:
        """Whether the namespace is there."""
        return Path("/run/netns", self.netns).exists()

    def create(self) -> None:
        """Make the namespace, its eth0 and the veth pair on the bridge (replacing a stale one)."""
        if self.ip not in self.network.pod_ips():
            raise NetworkError(f"{self.ip} is not a pod address of {self.network.cidr}")
        self.destroy()
        run_ip("netns", "add", self.netns)
        try:
            run_ip("link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.netns)
            run_ip("link", "set", self.veth, "master", self.network.link, "up")
            inside = ("netns", "exec", self.netns, "ip")
            run_ip(*inside, "link", "set", "lo", "up")
            run_ip(*inside, "addr", "add", f"{self.ip}/{self.network.cidr.prefixlen}", "dev", "eth0")
            run_ip(*inside, "link", "set", "eth0", "up")
            run_ip(*inside, "route", "add", "default", "via", self.gateway, "dev", "eth0")
        except BaseException:
            self.destroy()
            raise

    def command(self, argv: list[str], files_dir: Path, files_at: str = SERVICE_ACCOUNT_DIR) -> list[str]:
        """The command line that runs argv inside the sandbox, with files_dir mounted read-only at files_at."""
        return ["ip", "netns", "exec", self.netns, *host_network_command(argv, files_dir, files_at)]

    def destroy(self) -> None:
        """Delete the namespace (its eth0, and so the veth pair, go with it); idempotent."""
        if run_ip("link", "show", "dev", self.veth, check=False).returncode == 0:
            run_ip("link", "del", self.veth, check=False)
        if self.exists():
            run_ip("netns", "del", self.netns)


def sandboxes(slot: int) -> list[str]:
    """The pod network namespaces of a slot on this machine."""
    try:
        return sorted(n for n in os.listdir("/run/netns") if n.startswith(f"{NETNS_PREFIX}{slot}-"))
    except FileNotFoundError:
        return []


def remove_sandboxes(slot: int) -> list[str]:
    """Delete every pod network namespace of a slot (what a killed runtime left; each veth pair goes with its
    namespace); returns their names."""
    found = sandboxes(slot)
    prefix = f"{VETH_PREFIX}{slot}"
    links = run_ip("-o", "link", "show", "type", "veth", check=False).stdout.splitlines()
    for line in links:  # "7: gdv0abc...@if2: <...>": deleted at once, where the namespace's teardown lags
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(prefix) and len(name) == len(prefix) + ID_LENGTH:
            run_ip("link", "del", name, check=False)
    for name in found:
        run_ip("netns", "del", name, check=False)
    return found
