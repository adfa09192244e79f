"""Wire models of the node agent's HTTP API, shared by the agent and the runner (``tasks/agent_client.py``).

Every request body is validated against these models (``extra="forbid"``); the agent adds its own
limits on top (allowed CIDRs and interfaces, its max TTL, its GPU count). Endpoints (all under
``/v1`` need ``Authorization: Bearer <token>``):

- ``POST /v1/faults`` InjectRequest → 201 FaultStatus
- ``GET /v1/faults`` → ActiveFaults; ``GET /v1/faults/{id}`` → FaultStatus (with fresh evidence)
- ``POST /v1/faults/{id}/renew`` LeaseRenewal → FaultStatus
- ``DELETE /v1/faults/{id}`` → RevertResult (idempotent); ``DELETE /v1/faults`` → RevertAll
- ``GET /v1/devices`` → DeviceList; ``GET /healthz`` → Health (no token); ``GET /metrics`` (no token)

Errors answer with :class:`ErrorBody`.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PROTOCOL_VERSION = "v1"
MAX_TTL_SECONDS = 3600.0
"""The protocol's hard ceiling for a lease; an agent may be configured lower."""

XID_CODES: frozenset[int] = frozenset(
    {13, 31, 43, 45, 46, 48, 61, 62, 63, 64, 68, 74, 79, 92, 94, 95, 109, 119, 120, 140}
)
"""XID codes the agent will write (NVIDIA's catalogue, FAULTS.md §3; kept equal to blueprints.XID_ACTIONS)."""

XID_TEXT: dict[int, str] = {
    13: "Graphics Engine Exception", 31: "GPU memory page fault", 43: "GPU stopped processing",
    45: "Preemptive cleanup, due to previous errors", 46: "GPU stopped processing",
    48: "An uncorrectable double bit error (DBE) has been detected on GPU", 61: "Internal micro-controller breakpoint",
    62: "Internal micro-controller halt", 63: "ECC page retirement or row remapping recording event",
    64: "ECC page retirement or row remapper recording failure", 68: "NVDEC0 Exception",
    74: "NVLink Error", 79: "GPU has fallen off the bus.", 92: "High single-bit ECC error rate",
    94: "Contained ECC error", 95: "Uncontained ECC error", 109: "Context Switch Timeout Error",
    119: "Timeout waiting for RPC from GSP", 120: "GSP Error", 140: "Unrecovered ECC Error",
}

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
_IFACE = r"^[A-Za-z0-9_.-]{1,15}$"
_PCI = r"^[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(\.[0-7])?$"


class Wire(BaseModel):
    """Strict base for every wire model: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class XidParams(Wire):
    """gpu-xid: write driver-format XID lines to the kernel log (and DCGM field 230 when present)."""

    kind: Literal["gpu-xid"] = "gpu-xid"
    code: int
    gpu_index: int = Field(default=0, ge=0, le=15)
    count: int = Field(default=1, ge=1, le=100)
    interval_seconds: float = Field(default=1.0, ge=0, le=60)
    dcgm: bool = True
    pci_address: str | None = Field(default=None, pattern=_PCI, description="default: read from the node")

    @field_validator("pci_address")
    @classmethod
    def _driver_form(cls, v: str | None) -> str | None:
        """Any bus-id form (``00000000:CB:00.0``) becomes the driver's XID form (``0000:cb:00``)."""
        if v is None:
            return v
        domain, bus, dev = v.split(".")[0].split(":")
        return f"{domain[-4:]}:{bus}:{dev}".lower()

    @field_validator("code")
    @classmethod
    def _known(cls, v: int) -> int:
        if v not in XID_CODES:
            raise ValueError(f"XID {v} is not an allowed code; allowed: {sorted(XID_CODES)}")
        return v


class DegradeParams(Wire):
    """gpu-degrade: lock SM clocks, cap power and/or hold device memory through NVML."""

    kind: Literal["gpu-degrade"] = "gpu-degrade"
    gpu_index: int = Field(default=0, ge=0, le=15)
    sm_clock_mhz: int | None = Field(default=None, ge=100, le=5000)
    power_limit_w: int | None = Field(default=None, ge=50, le=2000)
    hold_memory_gib: float | None = Field(default=None, gt=0, le=1024)

    @model_validator(mode="after")
    def _something(self) -> DegradeParams:
        if self.sm_clock_mhz is None and self.power_limit_w is None and self.hold_memory_gib is None:
            raise ValueError("give at least one of sm_clock_mhz, power_limit_w, hold_memory_gib")
        return self


class PartitionParams(Wire):
    """nccl-partition: DROP/REJECT socket traffic to/from peers with a per-fault chain (iptables) or table (nft)."""

    kind: Literal["nccl-partition"] = "nccl-partition"
    backend: Literal["iptables", "nft"] = "iptables"
    action: Literal["DROP", "REJECT"] = "DROP"
    direction: Literal["both", "ingress", "egress"] = "both"
    peers: list[str] = Field(min_length=1, max_length=64, description="peer IPs or CIDRs")
    port_range: tuple[int, int] | None = None
    interface: str | None = Field(default=None, pattern=_IFACE)
    transport: Literal["sockets"] = Field(default="sockets", description="RDMA/InfiniBand is not touched")

    @field_validator("peers")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        out = []
        for p in v:
            try:
                out.append(str(ipaddress.ip_network(p, strict=False)))
            except ValueError as exc:
                raise ValueError(f"peer {p!r} is not an IP address or CIDR") from exc
        return out

    @field_validator("port_range")
    @classmethod
    def _ports(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and not (1 <= v[0] <= v[1] <= 65535):
            raise ValueError("port_range must be [low, high] within 1..65535")
        return v


FaultParams = Annotated[XidParams | DegradeParams | PartitionParams, Field(discriminator="kind")]
"""The parameters of any agent-held fault, chosen by ``kind``."""


class InjectRequest(Wire):
    """Ask the agent to hold a fault for ``ttl_seconds`` unless renewed."""

    fault_id: str = Field(pattern=_ID)
    run_id: str = Field(pattern=_ID)
    ttl_seconds: float = Field(gt=0, le=MAX_TTL_SECONDS)
    params: FaultParams


class LeaseRenewal(Wire):
    """Extend a fault's lease to now + ``ttl_seconds``."""

    ttl_seconds: float = Field(gt=0, le=MAX_TTL_SECONDS)


class Evidence(Wire):
    """What the agent can read back about a fault right now."""

    landed: bool
    summary: str
    details: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class FaultStatus(Wire):
    """One fault the agent holds (or held)."""

    fault_id: str
    run_id: str
    kind: str
    params: FaultParams
    state: Literal["active", "reverted", "failed"]
    injected_at: datetime
    expires_at: datetime
    lease_seconds_remaining: float
    evidence: Evidence | None = None


class ActiveFaults(Wire):
    """Everything the agent currently holds."""

    node: str
    faults: list[FaultStatus]


class RevertResult(Wire):
    """The outcome of one revert; ``reverted`` is false when the fault was not active (idempotent)."""

    fault_id: str
    reverted: bool
    reason: str
    message: str = ""


class RevertAll(Wire):
    """The outcome of reverting everything (optionally only one run's faults)."""

    results: list[RevertResult]


class DeviceInfo(Wire):
    """One GPU as NVML sees it."""

    index: int
    pci_bus_id: str
    kernel_pci: str = Field(description="the form the driver prints in XID lines, e.g. 0000:cb:00")
    name: str
    sm_clock_mhz: int
    sm_clock_locked_mhz: int | None
    power_limit_w: float
    default_power_limit_w: float
    memory_total_mib: int
    memory_used_mib: int
    last_xid: int = 0


class DeviceList(Wire):
    """The node's GPUs; ``backend`` says whether they are real, fake (lab) or absent."""

    node: str
    backend: Literal["real", "fake", "none"]
    devices: list[DeviceInfo]
    error: str | None = None


class Health(Wire):
    """Liveness and what the agent can do."""

    status: Literal["ok"] = "ok"
    node: str
    version: str = PROTOCOL_VERSION
    active_faults: int
    nvml: Literal["real", "fake", "none"]
    kmsg_path: str


class ErrorDetail(Wire):
    """One validation problem with where it is."""

    loc: str
    msg: str


class ErrorBody(Wire):
    """Every error response: a short code, a clear message, and per-field details for validation errors."""

    error: str
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)
