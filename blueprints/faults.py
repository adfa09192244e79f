"""Fault specs: what a user writes for each fault kind, and the discriminated union of them all.

The behaviour of each kind (plan / inject / verify / rollback) lives in ``tasks/faults/``; a test
asserts that every kind here has exactly one behaviour there and the reverse.
"""

from __future__ import annotations

import re

import ipaddress
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from blueprints.common import Duration, Model, NodeSelector, PodSelector

# NVIDIA XID catalogue (FAULTS.md §3): the codes gameday knows how to inject, and what each asks for.
XID_ACTIONS: dict[int, str] = {
    13: "restart-app", 31: "restart-app", 43: "ignore", 45: "cleanup", 46: "reset-gpu", 48: "dbe-ecc",
    61: "report", 62: "reset-gpu", 63: "ignore", 64: "reset-gpu", 68: "ignore", 74: "nvlink", 79: "reboot",
    92: "ignore", 94: "restart-app", 95: "reset-gpu", 109: "reset-gpu", 119: "reset-gpu", 120: "reset-gpu",
    140: "reset-gpu",
}


class _Fault(Model):
    name: str | None = Field(default=None, description="a name for the report; defaults to kind-index")


class ControlPlaneOverload(_Fault):
    """LIST storm against the API server, from the runner (client-storm) or from every node (daemonset-storm)."""

    kind: Literal["control-plane-overload"] = "control-plane-overload"
    mode: Literal["client-storm", "daemonset-storm"] = "client-storm"
    resource: Literal["pods", "nodes", "services", "endpoints", "configmaps", "events"] = "pods"
    rate: float = Field(default=50, gt=0, le=100_000, description="client-storm: target LIST/s in total")
    concurrency: int = Field(default=16, ge=1, le=4096)
    ramp_up: Duration = timedelta(seconds=5)
    watch_churn: bool = False
    namespace: str = Field(default="gameday-storm", description="daemonset-storm: where the DaemonSet runs")
    image: str = Field(default="lab/list-storm", description="daemonset-storm: the storm pod image")
    per_pod_rate: float = Field(default=1, gt=0, le=1000, description="daemonset-storm: LIST/s per pod")
    client_backoff_max: Duration | None = Field(default=None, description=(
        "daemonset-storm: the longest retry back-off of the storm pods' clients after a failed request (client-go's "
        "reflector: 30s); shorter brings them back sooner after an API server restart"))
    service_account: str | None = Field(default=None, description=(
        "daemonset-storm: the storm pods' service account in `namespace` (its RBAC decides whether their LISTs are "
        "served; the namespace's default account may list nothing)"))
    node_selector: dict[str, str] = Field(default_factory=dict)
    break_glass: bool = Field(default=True, description="give the runner reserved API seats first")
    ballast: int = Field(default=0, ge=0, le=20_000, description=(
        "ConfigMaps created in `namespace` before the storm and deleted after it, so that every cluster-wide "
        "LIST of configmaps is as expensive as in a big cluster (resource must be configmaps)"))
    ballast_bytes: int = Field(default=1024, ge=0, le=65_536, description="the data in each ballast ConfigMap")

    @model_validator(mode="after")
    def _ballast_is_listed(self) -> ControlPlaneOverload:
        if self.ballast and self.resource != "configmaps":
            raise ValueError(f"ballast makes LISTs of configmaps expensive; this storm lists {self.resource} "
                             "(set resource: configmaps, or drop ballast)")
        return self


class CorefileEdit(Model):
    """What the corefile mode makes CoreDNS do for chosen zones."""

    zones: list[str] = Field(min_length=1)
    action: Literal["servfail", "delay", "drop"] = "servfail"
    delay: Duration = timedelta(seconds=0)
    every: int = Field(default=1, ge=1, description="affect every Nth query (erratic's amount)")


class CorednsOutage(_Fault):
    """Break cluster DNS: scale CoreDNS to zero, block it with a NetworkPolicy, or edit its Corefile."""

    kind: Literal["coredns-outage"] = "coredns-outage"
    mode: Literal["scale-to-zero", "block", "corefile"] = "scale-to-zero"
    namespace: str = "kube-system"
    deployment: str = "coredns"
    configmap: str = "coredns"
    pod_labels: dict[str, str] = Field(default_factory=lambda: {"k8s-app": "kube-dns"})
    corefile: CorefileEdit | None = None

    @model_validator(mode="after")
    def _corefile_needed(self) -> CorednsOutage:
        if self.mode == "corefile" and self.corefile is None:
            raise ValueError("mode 'corefile' needs a corefile section (zones, action)")
        return self


class PodKill(_Fault):
    """Delete selected pods (their controllers recreate them)."""

    kind: Literal["pod-kill"] = "pod-kill"
    selector: PodSelector
    grace_period: Duration = timedelta(seconds=0)


class NodeCordon(_Fault):
    """Cordon selected nodes (optionally drain them); rollback uncordons exactly those it cordoned."""

    kind: Literal["node-cordon"] = "node-cordon"
    selector: NodeSelector
    drain: bool = False


class GpuXid(_Fault):
    """Write a driver-format XID line to a node's kernel log (and DCGM field 230 when present) via its agent."""

    kind: Literal["gpu-xid"] = "gpu-xid"
    selector: NodeSelector = NodeSelector(label_selector={"nvidia.com/gpu.present": "true"})
    code: int
    gpu_index: int = Field(default=0, ge=0, le=15)
    count: int = Field(default=1, ge=1, le=100)
    interval: Duration = timedelta(seconds=1)
    dcgm: bool = True
    lease: Duration = timedelta(seconds=30)

    @field_validator("code")
    @classmethod
    def _known_code(cls, v: int) -> int:
        if v not in XID_ACTIONS:
            raise ValueError(f"XID {v} is not in the catalogue; known: {sorted(XID_ACTIONS)}")
        return v


class GpuDegrade(_Fault):
    """Through NVML: lock SM clocks low, cap power and/or hold device memory; each restored exactly."""

    kind: Literal["gpu-degrade"] = "gpu-degrade"
    selector: NodeSelector = NodeSelector(label_selector={"nvidia.com/gpu.present": "true"})
    gpu_index: int = Field(default=0, ge=0, le=15)
    sm_clock_mhz: int | None = Field(default=None, ge=100, le=5000)
    power_limit_w: int | None = Field(default=None, ge=50, le=2000)
    hold_memory_gib: float | None = Field(default=None, gt=0, le=1024)
    lease: Duration = timedelta(seconds=30)

    @model_validator(mode="after")
    def _something(self) -> GpuDegrade:
        if self.sm_clock_mhz is None and self.power_limit_w is None and self.hold_memory_gib is None:
            raise ValueError("give at least one of sm_clock_mhz, power_limit_w, hold_memory_gib")
        return self


class NcclPartition(_Fault):
    """Cut socket traffic between training ranks (iptables/nft on the node, or a NetworkPolicy). RDMA is untouched."""

    kind: Literal["nccl-partition"] = "nccl-partition"
    mode: Literal["iptables", "nft", "network-policy"] = "iptables"
    action: Literal["DROP", "REJECT"] = "DROP"
    direction: Literal["both", "ingress", "egress"] = "both"
    peers: list[str] = Field(default_factory=list, description="peer IPs or CIDRs (iptables/nft)")
    port_range: tuple[int, int] | None = None
    selector: NodeSelector | None = None
    pod_selector: PodSelector | None = Field(default=None, description="network-policy: the pods to isolate")
    transport: Literal["sockets"] = Field(default="sockets", description="what this partitions: sockets only")
    lease: Duration = timedelta(seconds=30)

    @field_validator("peers")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for p in v:
            ipaddress.ip_network(p, strict=False)
        return v

    @model_validator(mode="after")
    def _shape(self) -> NcclPartition:
        if self.mode == "network-policy" and self.pod_selector is None:
            raise ValueError("mode 'network-policy' needs pod_selector")
        if self.mode != "network-policy" and not self.peers:
            raise ValueError(f"mode {self.mode!r} needs peers")
        if self.port_range and not (1 <= self.port_range[0] <= self.port_range[1] <= 65535):
            raise ValueError("port_range must be [low, high] within 1..65535")
        return self


class ChaosToolkitFault(_Fault):
    """Any Chaos Toolkit action as a fault, with an optional CTK rollback and verifying probe (run by chaoslib)."""

    kind: Literal["chaostoolkit"] = "chaostoolkit"
    action: dict[str, Any]
    rollback: dict[str, Any] | None = None
    verify: dict[str, Any] | None = None
    configuration: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, Any] = Field(default_factory=dict)
    touches: list[str] = Field(default_factory=list, description=(
        "what the action touches, for the blast radius (gameday cannot see inside it): node/<name>, "
        "pod/<namespace>/<name> or gpu/<node>/<index>"))

    @field_validator("touches")
    @classmethod
    def _touches(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if not re.fullmatch(r"node/[^/]+|pod/[^/]+/[^/]+|gpu/[^/]+/\d+", t)]
        if bad:
            raise ValueError(f"touches: {bad} are not node/<name>, pod/<namespace>/<name> or gpu/<node>/<index>")
        return v

    @field_validator("action", "rollback", "verify")
    @classmethod
    def _activity(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return v
        prov = v.get("provider")
        if not isinstance(prov, dict) or prov.get("type") not in ("python", "process", "http"):
            raise ValueError("a Chaos Toolkit activity needs provider.type python, process or http")
        return v


class Noop(_Fault):
    """Does nothing (but goes through ledger, verify and rollback): for rehearsing and measuring overhead."""

    kind: Literal["noop"] = "noop"


Fault = Annotated[
    ControlPlaneOverload | CorednsOutage | PodKill | NodeCordon | GpuXid | GpuDegrade | NcclPartition
    | ChaosToolkitFault | Noop,
    Field(discriminator="kind"),
]
"""Any fault spec, chosen by its ``kind``."""

FAULT_KINDS: tuple[str, ...] = (
    "control-plane-overload", "coredns-outage", "pod-kill", "node-cordon", "gpu-xid", "gpu-degrade",
    "nccl-partition", "chaostoolkit", "noop",
)
