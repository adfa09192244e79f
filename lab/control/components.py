"""The processes of the real control plane: their knobs, files and command lines.

``ControlPlaneOptions`` holds every knob the lab exposes; ``Layout`` names every file and port one lab uses;
``argv(name, ...)`` builds the command line of etcd, kube-apiserver, kube-controller-manager, kube-scheduler
and kwok from them. Nothing here starts a process (``lab.control.plane`` does), so command lines are tested
without binaries.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.control.pki import CertPair
from lab.wellknown import KWOK_NODE_ANNOTATION

LOOPBACK = "127.0.0.1"
DEFAULT_SERVICE_CIDR = "10.96.0.0/16"

ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
"""Start order; ``down`` stops them in reverse."""

NODE_NETWORK = ipaddress.ip_network("10.240.0.0/16")
"""Where kwok's nodes get their InternalIPs (``kwok.node_ip``)."""

MAX_REAL_NODES = 8
"""The most real lab nodes one lab runs (the rest of the slot's /26 is for their pods)."""

ALWAYS_ALLOW = "/healthz,/readyz,/livez,/metrics"
"""Paths kube-controller-manager and kube-scheduler serve without delegated authorization (scraping)."""


@dataclass(frozen=True)
class ControlPlaneOptions:
    """The knobs of the lab's control plane (the Kubernetes defaults unless noted)."""

    state_dir: Path
    nodes: int = 3
    """kwok's fake nodes (0 is fine when the lab runs nodes of its own)."""
    timeout: float = 180.0
    max_requests_inflight: int = 40
    """kube-apiserver ``--max-requests-inflight``: with APF, the non-mutating part of its seats (Kubernetes: 400;
    the lab's 60 seats in all are sized to this 2-core machine, so that one storm process fills APF's queues)."""
    max_mutating_requests_inflight: int = 20
    """kube-apiserver ``--max-mutating-requests-inflight``: APF's total is the sum of both (Kubernetes: 200)."""
    node_lease_seconds: int = 40
    """The Lease duration kwok writes for each node (kubelet's ``nodeLeaseDurationSeconds``); renewed every quarter."""
    node_monitor_grace_seconds: int = 40
    """kube-controller-manager ``--node-monitor-grace-period``: a node without a renewed lease this long is NotReady."""
    node_monitor_period_seconds: int = 5
    """kube-controller-manager ``--node-monitor-period``: how often the node lifecycle controller looks."""
    not_ready_toleration_seconds: int = 300
    """kube-apiserver ``--default-not-ready-toleration-seconds``: how long pods stay on a NotReady node."""
    unreachable_toleration_seconds: int = 300
    """kube-apiserver ``--default-unreachable-toleration-seconds``: the same for an unreachable node."""
    apiserver_memory_mib: float = 0.0
    """The API server's memory cgroup limit (cgroup v1 ``memory.limit_in_bytes``); past it the kernel OOM-kills it.
    0: no cgroup."""
    restart_backoff_seconds: float = 10.0
    """The API server's first restart delay after it exits (kubelet's CrashLoopBackOff starts at 10 s)."""
    restart_backoff_max_seconds: float = 300.0
    """The longest restart delay (doubling from the first; kubelet's cap is 300 s)."""
    service_cidr: str = DEFAULT_SERVICE_CIDR
    """Where Services get their ClusterIPs. With real nodes, left at this default, it becomes the slot's loopback
    range 127.(96+k).0.0/16, which the lab's runtime fronts as kube-proxy would (lab/runtime/proxy.py)."""
    pod_cidr: str = "10.244.0.0/16"
    """The addresses kwok gives its nodes' pods."""
    real_nodes: int = 0
    """The lab's own nodes (``lab-node-0`` ...), run by ``lab.runtime --real-plane``: registered and heartbeaten
    with their own ``system:node:<name>`` identities, their pods' programs really run, on the slot's pod network."""
    slot: int | None = None
    """The address slot (0-7) whose pod network the real nodes use; default the first free one."""
    gpu_nodes: int = 0
    """GPU nodes (``gpu-node-0`` ...): more of the lab's own nodes, each advertising 8 ``nvidia.com/gpu`` and served
    by a node agent process (fake NVML, its own kernel log), with the GPU health monitor and the DCGM-style exporter
    (``python -m lab.gpu``)."""
    training: bool = False
    """Also run the CPU training job whose ranks the GPU nodes' agents partition (network namespaces)."""
    gpu_reboot_seconds: float = 60.0
    """How long the GPU health monitor's reboot of a node (XID 79) keeps the node's kubelet down."""
    api_only: bool = False
    """Only etcd and kube-apiserver (with the lab's RBAC): no controllers, scheduler, kwok, nodes or Prometheus. For
    tests of API clients (agents, the runner's tasks) that arrange their own objects: Node objects they create stay
    as created, as nothing manages them."""
    identities: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """More static-token users for the API server's token file: (username, groups); e.g. an outsider in no group."""
    node_identities: tuple[str, ...] = ()
    """``system:node:<name>`` identities (group ``system:nodes``) for nodes the lab does not run itself (tests' own
    Node objects), so the Node authorizer and NodeRestriction judge them as they would a kubelet."""
    request_timeout_seconds: int = 60
    """kube-apiserver ``--request-timeout``: APF bounds a request's wait in its queue by a quarter of it (Kubernetes:
    60, so 15 s in the queue before a 429)."""
    janitor: bool = False
    """Also run gameday's janitor, the dead-man switch (agents/manifests/30-janitor.yaml), as a pod on a real node: it
    reverts a dead campaign's faults once its campaign Lease runs out."""

    @property
    def lab_nodes(self) -> int:
        """The lab's own nodes, run by its runtime: the real nodes and the GPU nodes."""
        return self.real_nodes + self.gpu_nodes

    def problems(self) -> list[str]:
        """Every knob that cannot work, each as 'name: why' (empty when all can)."""
        found = []
        if self.api_only:
            if self.nodes or self.lab_nodes or self.janitor or self.training:
                found.append(f"api_only: runs no nodes, janitor or training job, but nodes={self.nodes}, "
                             f"real_nodes={self.real_nodes}, gpu_nodes={self.gpu_nodes}, janitor={self.janitor}, "
                             f"training={self.training} were asked for")
        elif self.nodes < 0 or self.nodes + self.lab_nodes < 1:
            found.append(f"nodes: kwok's nodes, 0 or more, and at least one node in all, not {self.nodes} "
                         f"(+ {self.lab_nodes} of the lab's own)")
        found += [f"{name}: must be at least 1, not {getattr(self, name)}" for name in (
            "max_requests_inflight", "max_mutating_requests_inflight", "node_lease_seconds",
            "node_monitor_grace_seconds", "node_monitor_period_seconds", "request_timeout_seconds") if getattr(self, name) < 1]
        found += [f"{name}: must not be negative, not {getattr(self, name)}" for name in (
            "not_ready_toleration_seconds", "unreachable_toleration_seconds", "apiserver_memory_mib",
            "restart_backoff_seconds") if getattr(self, name) < 0]
        if not 0 <= self.real_nodes <= MAX_REAL_NODES:
            found.append(f"real_nodes: must be 0 to {MAX_REAL_NODES} (a slot's pod network has 62 addresses, "
                         f"nodes first), not {self.real_nodes}")
        if self.gpu_nodes < 0 or self.lab_nodes > MAX_REAL_NODES:
            found.append(f"gpu_nodes: with real_nodes, 0 to {MAX_REAL_NODES} of the lab's own nodes in all, not "
                         f"{self.real_nodes} + {self.gpu_nodes}")
        if self.lab_nodes and os.geteuid() != 0:
            found.append("real_nodes/gpu_nodes: the lab's own nodes' pod network and sandboxes need root "
                         "(ip link, ip netns)")
        if self.training and self.gpu_nodes < 1:
            found.append("training: the training job's ranks are hosted by GPU nodes: give gpu_nodes >= 1")
        if self.janitor and self.real_nodes < 1:
            found.append("janitor: the janitor runs as a pod on one of the lab's real nodes: give real_nodes >= 1")
        if self.gpu_reboot_seconds <= 0:
            found.append(f"gpu_reboot_seconds: must be positive, not {self.gpu_reboot_seconds:g}")
        if self.slot is not None and not 0 <= self.slot < 8:
            found.append(f"slot: must be 0 to 7, not {self.slot}")
        if 0 < self.apiserver_memory_mib < 64:
            found.append(f"apiserver_memory_mib: {self.apiserver_memory_mib:g} MiB cannot hold kube-apiserver even "
                         "idle (about 300 MiB): give at least 64, or 0 for no limit")
        if self.restart_backoff_max_seconds < self.restart_backoff_seconds:
            found.append("restart_backoff_max_seconds: must not be shorter than restart_backoff_seconds")
        if self.node_monitor_grace_seconds <= self.node_monitor_period_seconds:
            found.append("node_monitor_grace_seconds: must be longer than node_monitor_period_seconds "
                         f"({self.node_monitor_grace_seconds} <= {self.node_monitor_period_seconds})")
        networks: dict[str, ipaddress.IPv4Network | ipaddress.IPv6Network] = {"node addresses": NODE_NETWORK}
        for name in ("service_cidr", "pod_cidr"):
            try:
                networks[name] = ipaddress.ip_network(getattr(self, name))
            except ValueError as err:
                found.append(f"{name}: {err}")
        names = list(networks)
        found += [f"{b}: {networks[b]} overlaps {a} {networks[a]}" for i, a in enumerate(names)
                  for b in names[i + 1:] if networks[a].overlaps(networks[b])]
        return found


@dataclass(frozen=True)
class Ports:
    """The loopback ports of one control plane."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int


@dataclass(frozen=True)
class Layout:
    """Every file one lab's control plane reads or writes, under its state dir."""

    state_dir: Path
    ports: Ports
    binaries: dict[str, Path] = field(default_factory=dict)
    apiserver_host: str = "127.0.0.1"
    """The address kube-apiserver listens on and advertises (loopback, or lab-node-0's with real nodes)."""

    @property
    def pki(self) -> Path:
        """Certificates and keys."""
        return self.state_dir / "pki"

    @property
    def ca(self) -> CertPair:
        """The lab's CA."""
        return CertPair(self.pki / "ca.crt", self.pki / "ca.key")

    def serving(self, name: str) -> CertPair:
        """The serving certificate of a component."""
        return CertPair(self.pki / f"{name}.crt", self.pki / f"{name}.key")

    @property
    def sa_keys(self) -> CertPair:
        """The service-account token key pair (cert = the public key)."""
        return CertPair(self.pki / "sa.pub", self.pki / "sa.key")

    @property
    def tokens_csv(self) -> Path:
        """kube-apiserver's ``--token-auth-file``."""
        return self.pki / "tokens.csv"

    def kubeconfig(self, identity: str) -> Path:
        """The kubeconfig a component (or a user) talks to the API server with."""
        return self.state_dir / "kubeconfigs" / f"{identity}.kubeconfig"

    @property
    def etcd_data(self) -> Path:
        """etcd's data directory."""
        return self.state_dir / "etcd-data"

    @property
    def kwok_config(self) -> Path:
        """kwok's configuration (options and stages)."""
        return self.state_dir / "kwok.yaml"

    def supervisor_status(self, name: str) -> Path:
        """The JSON status file of a supervised component (pid, restarts, OOM kills, last exit, metrics URL)."""
        return self.state_dir / f"{name}.supervisor.json"

    def log(self, name: str) -> Path:
        """A component's log."""
        return self.state_dir / f"{name}.log"

    @property
    def apiserver_url(self) -> str:
        """The API server's HTTPS URL."""
        return f"https://{self.apiserver_host}:{self.ports.apiserver}"

    @property
    def etcd_url(self) -> str:
        """etcd's client URL (plain HTTP on loopback)."""
        return f"http://127.0.0.1:{self.ports.etcd_client}"

    def health_url(self, name: str) -> str:
        """The URL that answers 200 when a component is up."""
        return {
            "etcd": f"{self.etcd_url}/health",
            "kube-apiserver": f"{self.apiserver_url}/readyz",
            "kube-controller-manager": f"https://127.0.0.1:{self.ports.controller_manager}/healthz",
            "kube-scheduler": f"https://127.0.0.1:{self.ports.scheduler}/healthz",
            "kwok": f"http://127.0.0.1:{self.ports.kwok}/healthz",
        }[name]

    def metrics_url(self, name: str) -> str:
        """The URL Prometheus scrapes a component at."""
        return self.health_url(name).rsplit("/", 1)[0] + "/metrics"


def supervised(name: str, layout: Layout, opts: ControlPlaneOptions) -> list[str]:
    """The supervisor's command line that runs a component (restarts with back-off, the memory cgroup)."""
    return [sys.executable, "-m", "lab.control.supervisor", "--name", name,
            "--status-file", str(layout.supervisor_status(name)), "--memory-limit-mib", f"{opts.apiserver_memory_mib:g}",
            "--backoff", f"{opts.restart_backoff_seconds:g}", "--backoff-max", f"{opts.restart_backoff_max_seconds:g}",
            "--"]


def _duration(seconds: int) -> str:
    return f"{seconds}s"


def argv(name: str, layout: Layout, opts: ControlPlaneOptions) -> list[str]:
    """The command line of one control-plane component."""
    binary = str(layout.binaries.get(name, name))
    ports = layout.ports
    if name == "etcd":
        peer = f"http://127.0.0.1:{ports.etcd_peer}"
        return [binary, "--name", "lab", "--data-dir", str(layout.etcd_data),
                "--listen-client-urls", layout.etcd_url, "--advertise-client-urls", layout.etcd_url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"lab={peer}", "--unsafe-no-fsync", "--log-level", "warn"]
    if name == "kube-apiserver":
        serving = layout.serving("kube-apiserver")
        return [*supervised(name, layout, opts), binary, "--etcd-servers", layout.etcd_url,
                "--bind-address", layout.apiserver_host, "--advertise-address", layout.apiserver_host,
                "--secure-port", str(ports.apiserver),
                "--tls-cert-file", str(serving.cert), "--tls-private-key-file", str(serving.key),
                "--client-ca-file", str(layout.ca.cert), "--token-auth-file", str(layout.tokens_csv),
                "--authorization-mode", "Node,RBAC", "--enable-admission-plugins", "NodeRestriction",
                "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
                "--service-account-key-file", str(layout.sa_keys.cert),
                "--service-account-signing-key-file", str(layout.sa_keys.key),
                "--service-cluster-ip-range", opts.service_cidr,
                "--max-requests-inflight", str(opts.max_requests_inflight),
                "--max-mutating-requests-inflight", str(opts.max_mutating_requests_inflight),
                "--request-timeout", _duration(opts.request_timeout_seconds),
                "--default-not-ready-toleration-seconds", str(opts.not_ready_toleration_seconds),
                "--default-unreachable-toleration-seconds", str(opts.unreachable_toleration_seconds),
                "--allow-privileged=true", "--profiling=false",
                # a loopback advertise address cannot be the kubernetes Service's endpoint, so then the Service has
                # none; with real nodes the API server's address is a pod-network one and its lease reconciler
                # publishes it, as in a cluster
                *(["--endpoint-reconciler-type", "none"] if layout.apiserver_host == LOOPBACK else [])]
    if name == "kube-controller-manager":
        kubeconfig = str(layout.kubeconfig("kube-controller-manager"))
        serving = layout.serving("kube-controller-manager")
        return [binary, "--kubeconfig", kubeconfig, "--authentication-kubeconfig", kubeconfig,
                "--authorization-kubeconfig", kubeconfig, "--authorization-always-allow-paths", ALWAYS_ALLOW,
                "--bind-address", "127.0.0.1", "--secure-port", str(ports.controller_manager),
                "--tls-cert-file", str(serving.cert), "--tls-private-key-file", str(serving.key),
                "--service-account-private-key-file", str(layout.sa_keys.key),
                "--root-ca-file", str(layout.ca.cert), "--use-service-account-credentials",
                "--cluster-signing-cert-file", str(layout.ca.cert), "--cluster-signing-key-file", str(layout.ca.key),
                "--service-cluster-ip-range", opts.service_cidr, "--leader-elect=false",
                "--node-monitor-grace-period", _duration(opts.node_monitor_grace_seconds),
                "--node-monitor-period", _duration(opts.node_monitor_period_seconds)]
    if name == "kube-scheduler":
        kubeconfig = str(layout.kubeconfig("kube-scheduler"))
        serving = layout.serving("kube-scheduler")
        return [binary, "--kubeconfig", kubeconfig, "--authentication-kubeconfig", kubeconfig,
                "--authorization-kubeconfig", kubeconfig, "--authorization-always-allow-paths", ALWAYS_ALLOW,
                "--bind-address", "127.0.0.1", "--secure-port", str(ports.scheduler),
                "--tls-cert-file", str(serving.cert), "--tls-private-key-file", str(serving.key),
                "--leader-elect=false"]
    if name == "kwok":
        return [binary, "--kubeconfig", str(layout.kubeconfig("kwok")), "--config", str(layout.kwok_config),
                "--manage-nodes-with-annotation-selector", f"{KWOK_NODE_ANNOTATION}=fake",
                "--server-address", f"127.0.0.1:{ports.kwok}",
                "--node-lease-duration-seconds", str(opts.node_lease_seconds), "--cidr", opts.pod_cidr]
    raise KeyError(f"no control-plane component named {name!r}")


def kubeconfig(server: str, ca_file: Path, users: dict[str, str], namespace: str = "default") -> dict[str, Any]:
    """A kubeconfig with one context per user ({context: token}), the first current; the CA inlined."""
    ca_data = base64.b64encode(ca_file.read_bytes()).decode()
    names = list(users)
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "lab", "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": name, "user": {"token": token}} for name, token in users.items()],
        "contexts": [{"name": name, "context": {"cluster": "lab", "user": name, "namespace": namespace}}
                     for name in names],
        "current-context": names[0],
    }


def write_kubeconfig(path: Path, config: dict[str, Any]) -> Path:
    """Write a kubeconfig mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def tokens_csv(users: dict[str, dict[str, Any]]) -> str:
    """kube-apiserver's static token file (``token,user,uid,"group1,group2"``) for a users mapping."""
    lines = []
    for token, info in users.items():
        groups = [g for g in info.get("groups", []) if g != "system:authenticated"]
        lines.append(f'{token},{info["username"]},{info.get("uid", "")},"{",".join(groups)}"')
    return "\n".join(lines) + "\n"
