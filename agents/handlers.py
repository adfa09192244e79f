"""What each agent-held fault does on the node: prepare (capture undo, read only), apply, revert, evidence.

- gpu-xid: writes ``count`` driver-format XID lines (the first before the inject call returns), and while
  active re-injects DCGM field 230 every second when ``dcgmi`` exists. Revert stops both (kernel log
  lines cannot be unwritten) and clears the field. Blast radius: the node's kernel log, one GPU's field.
- gpu-degrade: locks SM clocks, caps power, holds device memory; revert restores the captured previous
  lock and power limit and frees the memory. Blast radius: one GPU.
- nccl-partition: a per-fault chain/table between the node and the peers; revert removes exactly it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from dataclasses import dataclass
from typing import Protocol

from agents.backends.dcgm import Dcgm
from agents.backends.firewall import Firewall
from agents.backends.kmsg import KmsgWriter, xid_line
from agents.backends.nvml import Nvml
from agents.errors import BackendUnavailable
from agents.protocol import XID_TEXT, DegradeParams, Evidence, PartitionParams, XidParams
from agents.state import StoredFault, UndoValue

DCGM_PERIOD_S = 1.0


def tag_of(fault_id: str) -> str:
    """A short, firewall-safe tag for a fault id (10 hex chars)."""
    return hashlib.sha256(fault_id.encode()).hexdigest()[:10]


@dataclass
class Backends:
    """Everything the handlers act through."""

    kmsg: KmsgWriter
    dcgm: Dcgm
    nvml: Nvml
    iptables: Firewall
    nft: Firewall


class Handler(Protocol):
    """One fault kind on the node."""

    async def prepare(self, f: StoredFault) -> dict[str, UndoValue]:
        """Check the node can do it and capture what revert needs; changes nothing."""

    async def apply(self, f: StoredFault) -> list[asyncio.Task[None]]:
        """Put the fault in place; return background tasks to cancel on revert."""

    async def revert(self, f: StoredFault) -> None:
        """Undo from ``f.undo`` alone; idempotent."""

    async def evidence(self, f: StoredFault) -> Evidence:
        """Read back whether the fault is in place."""


class XidHandler:
    """gpu-xid on this node."""

    def __init__(self, b: Backends) -> None:
        self.b = b

    async def prepare(self, f: StoredFault) -> dict[str, UndoValue]:
        """Find the GPU's PCI address (request, else NVML); fail clearly when neither knows it."""
        p = f.params
        assert isinstance(p, XidParams)
        pci = p.pci_address
        if pci is None:
            if self.b.nvml.device_count() == 0:
                raise BackendUnavailable("no PCI address for the XID line: give params.pci_address "
                                         "(no NVIDIA GPU/driver on this node to read it from)")
            pci = self.b.nvml.device(p.gpu_index).kernel_pci
        return {"pci": pci, "name": f"gameday-{tag_of(f.fault_id)}", "pid": os.getpid()}

    def _line(self, f: StoredFault) -> str:
        p = f.params
        assert isinstance(p, XidParams)
        return xid_line(str(f.undo["pci"]), p.code, int(f.undo["pid"] or 0), str(f.undo["name"]), XID_TEXT[p.code])

    async def apply(self, f: StoredFault) -> list[asyncio.Task[None]]:
        """Write the first line now; the rest (count-1, every interval) and DCGM re-injection in the background."""
        p = f.params
        assert isinstance(p, XidParams)
        await self.b.kmsg.write(self._line(f))
        if self.b.nvml.device_count() > p.gpu_index:
            self.b.nvml.record_xid(p.gpu_index, p.code)
        tasks = []
        if p.count > 1:
            tasks.append(asyncio.create_task(self._more(f, p)))
        if p.dcgm and self.b.dcgm.available:
            tasks.append(asyncio.create_task(self._dcgm_loop(f, p)))
        return tasks

    async def _more(self, f: StoredFault, p: XidParams) -> None:
        for _ in range(p.count - 1):
            await asyncio.sleep(p.interval_seconds)
            await self.b.kmsg.write(self._line(f))

    async def _dcgm_loop(self, f: StoredFault, p: XidParams) -> None:
        while True:
            err = await self.b.dcgm.inject(p.gpu_index, p.code)
            f.undo["dcgm_error"] = err
            f.undo["dcgm_last_ok"] = time.time() if err is None else f.undo.get("dcgm_last_ok")
            await asyncio.sleep(DCGM_PERIOD_S)

    async def revert(self, f: StoredFault) -> None:
        """Stop writing (the caller cancelled the tasks) and clear DCGM field 230 / the fake's last XID."""
        p = f.params
        assert isinstance(p, XidParams)
        if self.b.nvml.device_count() > p.gpu_index:
            self.b.nvml.record_xid(p.gpu_index, 0)
        if p.dcgm and self.b.dcgm.available:
            await self.b.dcgm.inject(p.gpu_index, 0)

    async def evidence(self, f: StoredFault) -> Evidence:
        """Count this fault's lines in the kernel log; report the DCGM path's state."""
        p = f.params
        assert isinstance(p, XidParams)
        n = await self.b.kmsg.count(f"name={f.undo.get('name')},")
        dcgm = "disabled" if not p.dcgm else (
            self.b.dcgm.describe() if not self.b.dcgm.available else (f.undo.get("dcgm_error") or "injecting"))
        return Evidence(
            landed=n >= 1, summary=f"{n} of {p.count} XID {p.code} line(s) in {self.b.kmsg.path}",
            details={"lines": n, "expected": p.count, "pci": f.undo.get("pci"), "dcgm": str(dcgm),
                     "kmsg_path": str(self.b.kmsg.path), "line": self._line(f)},
        )


class DegradeHandler:
    """gpu-degrade on this node."""

    def __init__(self, b: Backends) -> None:
        self.b = b

    async def prepare(self, f: StoredFault) -> dict[str, UndoValue]:
        """Capture the current clock lock and power limit (errors clearly when there is no GPU)."""
        p = f.params
        assert isinstance(p, DegradeParams)
        dev = self.b.nvml.device(p.gpu_index)
        return {"prev_locked_mhz": dev.sm_clock_locked_mhz, "prev_power_w": dev.power_limit_w,
                "prev_memory_used_mib": dev.memory_used_mib}

    async def apply(self, f: StoredFault) -> list[asyncio.Task[None]]:
        """Lock clocks, cap power, hold memory (in that order)."""
        p = f.params
        assert isinstance(p, DegradeParams)
        nv = self.b.nvml
        if p.sm_clock_mhz is not None:
            await asyncio.to_thread(nv.lock_sm_clock, p.gpu_index, p.sm_clock_mhz)
        if p.power_limit_w is not None:
            await asyncio.to_thread(nv.set_power_limit, p.gpu_index, p.power_limit_w)
        if p.hold_memory_gib is not None:
            await asyncio.to_thread(nv.hold_memory, p.gpu_index, p.hold_memory_gib)
        return []

    async def revert(self, f: StoredFault) -> None:
        """Free memory, restore the previous power limit and clock lock (reset when there was none)."""
        p = f.params
        assert isinstance(p, DegradeParams)
        nv = self.b.nvml
        if nv.device_count() <= p.gpu_index:
            return
        if p.hold_memory_gib is not None:
            await asyncio.to_thread(nv.release_memory, p.gpu_index)
        prev_power = f.undo.get("prev_power_w")
        if p.power_limit_w is not None and isinstance(prev_power, int | float):
            await asyncio.to_thread(nv.set_power_limit, p.gpu_index, float(prev_power))
        if p.sm_clock_mhz is not None:
            prev = f.undo.get("prev_locked_mhz")
            if isinstance(prev, int):
                await asyncio.to_thread(nv.lock_sm_clock, p.gpu_index, prev)
            else:
                await asyncio.to_thread(nv.reset_sm_clock, p.gpu_index)

    async def evidence(self, f: StoredFault) -> Evidence:
        """Read the GPU back and compare with what was asked."""
        p = f.params
        assert isinstance(p, DegradeParams)
        dev = self.b.nvml.device(p.gpu_index)
        checks = []
        if p.sm_clock_mhz is not None:
            checks.append(("clock", dev.sm_clock_mhz <= p.sm_clock_mhz))
        if p.power_limit_w is not None:
            checks.append(("power", abs(dev.power_limit_w - p.power_limit_w) < 1))
        if p.hold_memory_gib is not None:
            before = int(f.undo.get("prev_memory_used_mib") or 0)
            checks.append(("memory", dev.memory_used_mib - before >= int(p.hold_memory_gib * 1024) * 0.99))
        ok = all(c for _, c in checks)
        return Evidence(
            landed=ok, summary=f"GPU {p.gpu_index}: " + ", ".join(f"{n} {'ok' if c else 'NOT in place'}" for n, c in checks),
            details={"sm_clock_mhz": dev.sm_clock_mhz, "power_limit_w": dev.power_limit_w,
                     "memory_used_mib": dev.memory_used_mib, "nvml": self.b.nvml.kind},
        )


class PartitionHandler:
    """nccl-partition on this node."""

    def __init__(self, b: Backends) -> None:
        self.b = b

    def _fw(self, f: StoredFault) -> Firewall:
        p = f.params
        assert isinstance(p, PartitionParams)
        return self.b.nft if p.backend == "nft" else self.b.iptables

    async def prepare(self, f: StoredFault) -> dict[str, UndoValue]:
        """Name the chain/table."""
        return {"tag": tag_of(f.fault_id)}

    async def apply(self, f: StoredFault) -> list[asyncio.Task[None]]:
        """Install the chain/table."""
        p = f.params
        assert isinstance(p, PartitionParams)
        await self._fw(f).apply(str(f.undo["tag"]), p)
        return []

    async def revert(self, f: StoredFault) -> None:
        """Remove exactly the chain/table."""
        await self._fw(f).revert(str(f.undo.get("tag") or tag_of(f.fault_id)))

    async def evidence(self, f: StoredFault) -> Evidence:
        """Whether the chain/table is in place."""
        p = f.params
        assert isinstance(p, PartitionParams)
        ok, what = await self._fw(f).present(str(f.undo["tag"]))
        return Evidence(landed=ok, summary=what, details={"backend": p.backend, "action": p.action,
                                                          "direction": p.direction, "transport": p.transport,
                                                          "tag": str(f.undo["tag"])})


def make_handlers(b: Backends) -> dict[str, Handler]:
    """The handler for each kind."""
    return {"gpu-xid": XidHandler(b), "gpu-degrade": DegradeHandler(b), "nccl-partition": PartitionHandler(b)}
