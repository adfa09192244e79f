"""Tests for lab.gpu.exporter: DCGM-style gauges from fake NVML state files and kernel logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.gpu.exporter import NodeSource, gpu_uuid, serve
from tests.lab.gpu.conftest import append_xid, http


def _fake_nvml(path: Path, node: str, clocks: list[int], last_xid: int = 0) -> None:
    devices = [
        {"index": i, "pci_bus_id": f"00000000:{0x18 + i:02X}:00.0", "kernel_pci": f"0000:{0x18 + i:02x}:00",
         "name": "NVIDIA H100 80GB HBM3 (fake)", "sm_clock_mhz": clock, "sm_clock_locked_mhz": None,
         "power_limit_w": 700.0, "default_power_limit_w": 700.0, "memory_total_mib": 81559,
         "memory_used_mib": 1024 * i, "last_xid": last_xid if i == 0 else 0}
        for i, clock in enumerate(clocks)
    ]  # fmt: skip
    path.write_text(json.dumps({"node": node, "backend": "fake", "devices": devices, "error": None}))


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """The exporter over one node's fake NVML file and kernel log; yields (metrics URL, nvml file, kmsg)."""
    nvml, kmsg = tmp_path / "nvml.json", tmp_path / "kmsg"
    _fake_nvml(nvml, "gpu-node-0", [1980, 1980])
    kmsg.touch()
    server, port = serve([NodeSource("gpu-node-0", nvml, kmsg)])
    try:
        yield f"http://127.0.0.1:{port}/metrics", nvml, kmsg
    finally:
        server.shutdown()
        server.server_close()


def _sample(text: str, name: str, gpu: int) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and f'gpu="{gpu}"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} for gpu {gpu} in:\n{text}")


def _scrape(url: str) -> str:
    status, text = http(url)
    assert status == 200
    return str(text)


def test_fake_nvml_clock_and_kmsg_xid_show_up(exporter: tuple[str, Path, Path]) -> None:
    """A fake NVML clock lock shows as SM clock and lower utilisation; a kernel-log XID shows for its GPU only."""
    url, nvml, kmsg = exporter
    text = _scrape(url)
    assert _sample(text, "DCGM_FI_DEV_SM_CLOCK", 1) == 1980
    assert _sample(text, "DCGM_FI_DEV_XID_ERRORS", 1) == 0
    assert f'UUID="{gpu_uuid("gpu-node-0", 1)}"' in text and 'Hostname="gpu-node-0"' in text
    _fake_nvml(nvml, "gpu-node-0", [1980, 990])
    append_xid(kmsg, 79, pci="0000:19:00")
    text = _scrape(url)
    assert _sample(text, "DCGM_FI_DEV_SM_CLOCK", 1) == 990
    assert _sample(text, "DCGM_FI_DEV_GPU_UTIL", 1) == 0, "a fatal XID idles the fake GPU"
    assert _sample(text, "DCGM_FI_DEV_XID_ERRORS", 1) == 79
    assert _sample(text, "DCGM_FI_DEV_XID_ERRORS", 0) == 0
    assert _sample(text, "DCGM_FI_DEV_FB_USED", 1) == 1024


def test_fake_nvml_last_xid_and_power_model(exporter: tuple[str, Path, Path]) -> None:
    """The agent's DCGM-style last_xid wins over the kernel log; power follows utilisation under the cap."""
    url, nvml, _ = exporter
    _fake_nvml(nvml, "gpu-node-0", [1980, 1980], last_xid=94)
    text = _scrape(url)
    assert _sample(text, "DCGM_FI_DEV_XID_ERRORS", 0) == 94
    assert _sample(text, "DCGM_FI_DEV_GPU_UTIL", 0) == 95
    assert _sample(text, "DCGM_FI_DEV_POWER_USAGE", 0) == pytest.approx(100 + 5.5 * 95)
