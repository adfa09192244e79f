"""Tests for lab.runtime.slots (address slots shared by labs on one machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import LabError
from lab.runtime import slots


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private slot registry directory."""
    reg = tmp_path / "slots"
    reg.mkdir()
    monkeypatch.setattr(slots, "registry_dir", lambda: reg)
    return reg


def test_slot_service_addresses() -> None:
    """Slot k's Services are in 127.(96+k).0.0/16 (the real plane's service range, which the runtime's proxy
    fronts)."""
    assert slots.service_prefix(0) == "127.96.0."
    assert slots.service_prefix(3) == "127.99.0."


def test_claim_is_exclusive_until_released(registry: Path, tmp_path: Path) -> None:
    """A live claim blocks other labs, is reusable by its own state dir, and release frees it."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert slots.claim(a, 7) == 7
    with pytest.raises(LabError):
        slots.claim(b, 7)
    assert slots.claim(a, 7) == 7
    slots.release(a)
    assert not list(registry.glob("*.json"))
    assert slots.claim(b, 7) == 7


def test_stale_claims_are_reclaimed(registry: Path, tmp_path: Path) -> None:
    """A claim whose owner process and lab processes are all gone is taken over."""
    (registry / "7.json").write_text('{"state_dir": "/nonexistent", "pid": 999999999}')
    assert slots.claim(tmp_path / "c", 7) == 7
