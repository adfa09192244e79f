"""The runtime's settings: which of the lab's own nodes it runs, where the API server is, and its intervals."""

from __future__ import annotations

from dataclasses import dataclass

from lab.runtime.loops import EventLoopKind


@dataclass(frozen=True)
class RuntimeConfig:
    """What one runtime process hosts: the lab's own nodes of a real control plane (kubelets and leases only; the
    real controller manager and scheduler do the rest), node and pod addresses from the slot's pod network
    (lab/network.py), service-account tokens from the TokenRequest API."""

    api_url: str
    users_file: str
    nodes: int = 3
    gpu_nodes: int = 0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    node_prefix: str = "node"
    gpu_node_prefix: str = "gpu-node"
    node_cpu: str = "32"
    node_memory: str = "128Gi"
    node_pods: int = 110
    lease_duration_s: int = 40
    renew_interval_s: float = 10.0
    probe_period_s: float = 1.0
    restart_backoff_s: float = 10.0
    proxy: bool = True
    slot: int = 0
    ca_file: str = ""
    """The CA that signed the API server's certificate (HTTPS API URL)."""
    pods_dir: str = ""
    """Where each pod's directory (volumes, logs) goes; default a folder in the system's temporary directory."""
    binaries: tuple[tuple[str, str], ...] = ()
    """The lab's built components (name, path) that pod programs may run (the real CoreDNS)."""
    event_loop: EventLoopKind = "asyncio"
    """The event loop of the main thread and the lease thread (lab/runtime/loops.py)."""

    def node_names(self) -> list[str]:
        """Names of the nodes this runtime hosts: CPU nodes, then GPU nodes."""
        cpu = [f"{self.node_prefix}-{i}" for i in range(self.nodes - self.gpu_nodes)]
        gpu = [f"{self.gpu_node_prefix}-{i}" for i in range(self.gpu_nodes)]
        return cpu + gpu

    def node_ip(self, index: int) -> str:
        """The InternalIP of the index-th hosted node: the first addresses of the slot's pod network."""
        from lab.network import PodNetwork

        return PodNetwork(self.slot, self.nodes).node_ip(index)

    def is_gpu(self, node: str) -> bool:
        """Whether a hosted node carries GPUs."""
        return node.startswith(self.gpu_node_prefix + "-")
