"""GPU control through NVML: the :class:`Nvml` interface, the real backend (pynvml) and the lab's fake.

``PynvmlBackend`` uses ``nvidia-ml-py`` (import name ``pynvml``) and, to hold device memory, the CUDA
driver API through ctypes. ``FakeNvmlBackend`` keeps the same state in memory (clocks, power limit,
memory used, last XID) and, when given ``state_file``, writes it as JSON (``DeviceList`` shape) after
every change so a DCGM-exporter-style exporter in ``lab/gpu`` can show it. ``NoNvml`` answers every
control call with a clear "no GPU" error.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Literal, Protocol

from agents.backends.cuda_hold import CudaMemoryHold
from agents.errors import BackendFailed, BackendUnavailable, Invalid
from agents.files import write_atomic
from agents.protocol import DeviceInfo

NvmlKind = Literal["real", "fake", "none"]
NO_GPU = "no NVIDIA GPU/driver on this node"
FAKE_BUS_IDS = (0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB)  # a DGX H100's GPU buses


def kernel_pci(bus_id: str) -> str:
    """NVML's ``00000000:CB:00.0`` → the driver's XID form ``0000:cb:00``."""
    domain, bus, rest = bus_id.split(":", 2)
    return f"{domain[-4:]}:{bus}:{rest.split('.')[0]}".lower()


class Nvml(Protocol):
    """What the agent needs from NVML."""

    kind: NvmlKind

    def device_count(self) -> int:
        """How many GPUs the node has (0 when none)."""

    def device(self, index: int) -> DeviceInfo:
        """The current state of GPU ``index``."""

    def lock_sm_clock(self, index: int, mhz: int) -> None:
        """Lock the SM clock of GPU ``index`` to ``mhz``."""

    def reset_sm_clock(self, index: int) -> None:
        """Remove any SM clock lock."""

    def set_power_limit(self, index: int, watts: float) -> None:
        """Set the power management limit."""

    def hold_memory(self, index: int, gib: float) -> None:
        """Allocate and keep ``gib`` GiB of device memory until released."""

    def release_memory(self, index: int) -> None:
        """Free what ``hold_memory`` holds on GPU ``index`` (no-op when nothing is held)."""

    def record_xid(self, index: int, code: int) -> None:
        """Note an injected XID (the fake shows it as DCGM field 230 would); no-op on real GPUs."""


def _check_index(count: int, index: int) -> None:
    if count == 0:
        raise BackendUnavailable(f"{NO_GPU}: the agent found no GPUs")
    if not 0 <= index < count:
        raise Invalid(f"gpu_index {index} is out of range: this node has {count} GPU(s) (0..{count - 1})")


class NoNvml:
    """The backend when the agent runs with ``--nvml none``: every control call fails clearly."""

    kind: NvmlKind = "none"

    def __init__(self, reason: str = f"{NO_GPU} (--nvml none)") -> None:
        self.reason = reason

    def device_count(self) -> int:
        """No GPUs."""
        return 0

    def _fail(self) -> BackendUnavailable:
        return BackendUnavailable(self.reason)

    def device(self, index: int) -> DeviceInfo:
        """Always fails."""
        raise self._fail()

    def lock_sm_clock(self, index: int, mhz: int) -> None:
        """Always fails."""
        raise self._fail()

    def reset_sm_clock(self, index: int) -> None:
        """Always fails."""
        raise self._fail()

    def set_power_limit(self, index: int, watts: float) -> None:
        """Always fails."""
        raise self._fail()

    def hold_memory(self, index: int, gib: float) -> None:
        """Always fails."""
        raise self._fail()

    def release_memory(self, index: int) -> None:
        """Nothing to release."""

    def record_xid(self, index: int, code: int) -> None:
        """Nothing to record."""


class FakeNvmlBackend:
    """In-memory GPUs for the lab and tests (H100-like defaults); optionally mirrored to a JSON file."""

    kind: NvmlKind = "fake"

    def __init__(self, count: int = 8, state_file: Path | None = None, node: str = "") -> None:
        self._lock = threading.Lock()
        self.node = node
        self.state_file = state_file
        self._devices: list[dict[str, float | str | int | None]] = [
            {
                "index": i, "pci_bus_id": f"00000000:{FAKE_BUS_IDS[i % 8] + i // 8:02X}:00.0", "name": "NVIDIA H100 80GB HBM3 (fake)",
                "sm_clock_mhz": 1980, "sm_clock_locked_mhz": None, "power_limit_w": 700.0,
                "default_power_limit_w": 700.0, "memory_total_mib": 81559, "memory_used_mib": 0, "last_xid": 0,
            }
            for i in range(count)
        ]
        for d in self._devices:
            d["kernel_pci"] = kernel_pci(str(d["pci_bus_id"]))
        self._held: dict[int, int] = {}
        self._write()

    def device_count(self) -> int:
        """How many fake GPUs there are."""
        return len(self._devices)

    def device(self, index: int) -> DeviceInfo:
        """A snapshot of fake GPU ``index``."""
        _check_index(len(self._devices), index)
        with self._lock:
            return DeviceInfo.model_validate(self._devices[index])

    def _set(self, index: int, **values: float | str | None) -> None:
        _check_index(len(self._devices), index)
        with self._lock:
            self._devices[index].update(values)
        self._write()

    def lock_sm_clock(self, index: int, mhz: int) -> None:
        """Lock the fake SM clock."""
        self._set(index, sm_clock_locked_mhz=mhz, sm_clock_mhz=mhz)

    def reset_sm_clock(self, index: int) -> None:
        """Unlock the fake SM clock (back to boost)."""
        self._set(index, sm_clock_locked_mhz=None, sm_clock_mhz=1980)

    def set_power_limit(self, index: int, watts: float) -> None:
        """Set the fake power limit."""
        self._set(index, power_limit_w=float(watts))

    def hold_memory(self, index: int, gib: float) -> None:
        """Count ``gib`` GiB as used (fails like cudaMalloc when it does not fit)."""
        dev = self.device(index)
        mib = int(gib * 1024)
        if dev.memory_used_mib + mib > dev.memory_total_mib:
            raise BackendFailed(f"cannot hold {gib} GiB on GPU {index}: only "
                                f"{(dev.memory_total_mib - dev.memory_used_mib) / 1024:.1f} GiB free")
        self._held[index] = self._held.get(index, 0) + mib
        self._set(index, memory_used_mib=dev.memory_used_mib + mib)

    def release_memory(self, index: int) -> None:
        """Give back what ``hold_memory`` took."""
        mib = self._held.pop(index, 0)
        if mib:
            self._set(index, memory_used_mib=max(0, self.device(index).memory_used_mib - mib))

    def record_xid(self, index: int, code: int) -> None:
        """Remember the last injected XID (0 clears it)."""
        self._set(index, last_xid=code)

    def snapshot(self) -> list[DeviceInfo]:
        """Every fake GPU's state."""
        return [self.device(i) for i in range(len(self._devices))]

    def _write(self) -> None:
        if self.state_file is None:
            return
        with self._lock:
            body = {"node": self.node, "backend": "fake", "devices": self._devices, "error": None}
            write_atomic(self.state_file, json.dumps(body, indent=1))


class PynvmlBackend:
    """Real GPUs through pynvml; memory is held with the CUDA driver API."""

    kind: NvmlKind = "real"

    def __init__(self) -> None:
        import pynvml  # type: ignore[import-untyped]

        self._nv = pynvml
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise BackendUnavailable(f"{NO_GPU} ({type(exc).__name__})") from exc
        self._holds: dict[int, CudaMemoryHold] = {}

    def _handle(self, index: int) -> object:
        _check_index(self.device_count(), index)
        return self._nv.nvmlDeviceGetHandleByIndex(index)

    def _call(self, what: str, fn: object, *args: object) -> object:
        try:
            return fn(*args)  # type: ignore[operator]
        except self._nv.NVMLError as exc:
            raise BackendFailed(f"NVML {what} failed: {exc}") from exc

    def device_count(self) -> int:
        """How many GPUs NVML sees."""
        return int(self._nv.nvmlDeviceGetCount())

    def device(self, index: int) -> DeviceInfo:
        """Read clocks, power and memory of GPU ``index``."""
        nv, h = self._nv, self._handle(index)
        bus = nv.nvmlDeviceGetPciInfo(h).busId
        bus_id = bus.decode() if isinstance(bus, bytes) else str(bus)
        mem = nv.nvmlDeviceGetMemoryInfo(h)
        name = nv.nvmlDeviceGetName(h)
        return DeviceInfo(
            index=index, pci_bus_id=bus_id, kernel_pci=kernel_pci(bus_id),
            name=name.decode() if isinstance(name, bytes) else str(name),
            sm_clock_mhz=int(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)), sm_clock_locked_mhz=None,
            power_limit_w=nv.nvmlDeviceGetPowerManagementLimit(h) / 1000.0,
            default_power_limit_w=nv.nvmlDeviceGetPowerManagementDefaultLimit(h) / 1000.0,
            memory_total_mib=int(mem.total // 2**20), memory_used_mib=int(mem.used // 2**20),
        )

    def lock_sm_clock(self, index: int, mhz: int) -> None:
        """nvmlDeviceSetGpuLockedClocks(mhz, mhz)."""
        self._call("SetGpuLockedClocks", self._nv.nvmlDeviceSetGpuLockedClocks, self._handle(index), mhz, mhz)

    def reset_sm_clock(self, index: int) -> None:
        """nvmlDeviceResetGpuLockedClocks."""
        self._call("ResetGpuLockedClocks", self._nv.nvmlDeviceResetGpuLockedClocks, self._handle(index))

    def set_power_limit(self, index: int, watts: float) -> None:
        """nvmlDeviceSetPowerManagementLimit (milliwatts)."""
        self._call("SetPowerManagementLimit", self._nv.nvmlDeviceSetPowerManagementLimit,
                   self._handle(index), int(watts * 1000))

    def hold_memory(self, index: int, gib: float) -> None:
        """cuMemAlloc ``gib`` GiB on GPU ``index`` and keep it."""
        self._handle(index)
        hold = CudaMemoryHold(index, int(gib * 2**30))
        self._holds[index] = hold

    def release_memory(self, index: int) -> None:
        """Free the held allocation."""
        hold = self._holds.pop(index, None)
        if hold is not None:
            hold.release()

    def record_xid(self, index: int, code: int) -> None:
        """Real GPUs show XIDs through the driver only: nothing to record."""


def make_nvml(kind: NvmlKind, gpu_count: int = 8, state_file: Path | None = None, node: str = "") -> Nvml:
    """Build the backend the CLI asked for; ``real`` without a GPU falls back to a NoNvml that says why."""
    if kind == "fake":
        return FakeNvmlBackend(gpu_count, state_file, node)
    if kind == "real":
        try:
            return PynvmlBackend()
        except BackendUnavailable as exc:
            return NoNvml(exc.message)
    return NoNvml()
