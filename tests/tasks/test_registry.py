"""The fault registry: every spec kind has exactly one behaviour and the reverse."""

from __future__ import annotations

import pytest

from blueprints.faults import FAULT_KINDS
from tasks.errors import UnknownFaultKind
from tasks.faults import REGISTRY, behaviour


def test_every_kind_has_one_behaviour_and_the_reverse() -> None:
    """Registered kinds are exactly FAULT_KINDS, and each behaviour is filed under its own kind."""
    assert sorted(REGISTRY) == sorted(FAULT_KINDS)
    assert all(REGISTRY[k].kind == k for k in REGISTRY)


def test_every_behaviour_implements_the_contract() -> None:
    """Each behaviour has plan, inject, verify, rollback and renew."""
    for kind, b in REGISTRY.items():
        missing = [m for m in ("plan", "inject", "verify", "rollback", "renew") if not callable(getattr(b, m, None))]
        assert not missing, f"{kind} lacks {missing}"


def test_unknown_kind_is_a_typed_error() -> None:
    """Asking for an unregistered kind raises UnknownFaultKind naming the known ones."""
    with pytest.raises(UnknownFaultKind, match="noop"):
        behaviour("no-such-kind")
