"""Tests for lab.training.partition: DROP hangs connections, REJECT resets them, heal restores them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from lab.training import partition
from lab.training.netns import TrainingNetwork, training_network
from tests.lab.training.conftest import Listener, connect

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("require_root")]


@pytest.fixture
def net() -> Iterator[TrainingNetwork]:
    """Two rank namespaces, removed afterwards."""
    with training_network("p" + uuid.uuid4().hex[:7], 2) as n:
        yield n


@pytest.fixture
def listener(net: TrainingNetwork) -> Iterator[Listener]:
    """A TCP listener in rank 1's namespace."""
    srv = Listener(net.ranks[1].namespace, net.ranks[1].address)
    try:
        yield srv
    finally:
        srv.close()


@pytest.mark.usefixtures("listener")
def test_drop_makes_connections_time_out_until_healed(net: TrainingNetwork) -> None:
    """With DROP rules between the ranks a connection times out; after heal it succeeds and no rule is left."""
    src, dst = net.ranks[0].namespace, net.ranks[1].address
    assert connect(src, dst) == "ok"
    partition.partition(net, "DROP")
    assert partition.rule_count(net) == 4
    assert connect(src, dst, timeout=1.0) == "timeout"
    partition.heal(net)
    assert partition.rule_count(net) == 0
    assert connect(src, dst) == "ok"


@pytest.mark.usefixtures("listener")
def test_reject_fails_connections_fast(net: TrainingNetwork) -> None:
    """With REJECT (tcp-reset on OUTPUT) a connection is refused instead of hanging; heal is idempotent."""
    partition.partition(net, "REJECT")
    assert partition.rule_count(net) == 2
    assert connect(net.ranks[0].namespace, net.ranks[1].address, timeout=5.0) == "refused"
    partition.heal(net)
    partition.heal(net)
    assert connect(net.ranks[0].namespace, net.ranks[1].address) == "ok"
