"""NVML backends: the fake's state and file mirror, and the real backend's clear error without a GPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.backends.nvml import FakeNvmlBackend, NoNvml, kernel_pci, make_nvml
from agents.errors import BackendFailed, BackendUnavailable, Invalid


def test_kernel_pci_form() -> None:
    """NVML's bus id becomes the driver's XID form."""
    assert kernel_pci("00000000:CB:00.0") == "0000:cb:00"


def test_fake_nvml_changes_and_mirrors_state(tmp_path: Path) -> None:
    """The fake applies clock, power and memory changes and writes them to its state file."""
    nv = FakeNvmlBackend(2, tmp_path / "gpus.json", node="n1")
    nv.lock_sm_clock(0, 500)
    nv.set_power_limit(0, 250)
    nv.hold_memory(1, 1.5)
    nv.record_xid(1, 79)
    doc = json.loads((tmp_path / "gpus.json").read_text())
    assert doc["node"] == "n1" and doc["backend"] == "fake"
    assert (doc["devices"][0]["sm_clock_locked_mhz"], doc["devices"][0]["power_limit_w"]) == (500, 250.0)
    assert (doc["devices"][1]["memory_used_mib"], doc["devices"][1]["last_xid"]) == (1536, 79)
    nv.release_memory(1)
    nv.reset_sm_clock(0)
    assert nv.device(1).memory_used_mib == 0 and nv.device(0).sm_clock_locked_mhz is None


def test_fake_nvml_refuses_bad_index_and_overcommit() -> None:
    """An index past the last GPU and more memory than exists are clear errors."""
    nv = FakeNvmlBackend(1)
    with pytest.raises(Invalid, match="out of range"):
        nv.device(3)
    with pytest.raises(BackendFailed, match="only"):
        nv.hold_memory(0, 100)


def test_real_nvml_without_gpu_says_so() -> None:
    """On a machine without a GPU, --nvml real yields a backend whose every call explains why."""
    nv = make_nvml("real")
    if nv.kind == "real":
        pytest.skip("this machine has an NVIDIA GPU")
    assert isinstance(nv, NoNvml) and nv.device_count() == 0
    with pytest.raises(BackendUnavailable, match=r"no NVIDIA GPU/driver on this node \(NVMLError_LibraryNotFound\)"):
        nv.lock_sm_clock(0, 500)
