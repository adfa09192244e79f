"""Tests for lab.training.netns: namespaces per rank on a bridge, always removed."""

from __future__ import annotations

import uuid

import pytest

from lab.training.errors import NetnsError
from lab.training.netns import create_network, delete_network, list_namespaces, run_ip, training_network
from tests.lab.training.conftest import Listener, connect

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("require_root")]


def _job_id() -> str:
    return "t" + uuid.uuid4().hex[:7]


def test_ranks_get_addresses_and_reach_each_other() -> None:
    """Three rank namespaces get TEST-NET addresses on eth0 and reach each other over TCP through the bridge."""
    job = _job_id()
    with training_network(job, 3) as net:
        assert list_namespaces(job) == sorted(net.namespaces)
        for member in net.ranks:
            assert f"inet {member.address}/24" in run_ip("ip", "-n", member.namespace, "addr", "show", "eth0")
        listener = Listener(net.ranks[2].namespace, net.ranks[2].address)
        try:
            assert connect(net.ranks[0].namespace, net.ranks[2].address) == "ok"
        finally:
            listener.close()
    assert list_namespaces(job) == []


def test_namespaces_are_removed_when_the_block_fails() -> None:
    """An exception inside the block still deletes every namespace of the job."""
    job = _job_id()
    with pytest.raises(RuntimeError, match="boom"), training_network(job, 2):
        assert len(list_namespaces(job)) == 3
        raise RuntimeError("boom")
    assert list_namespaces(job) == []


def test_creating_a_job_twice_is_refused_and_delete_is_idempotent() -> None:
    """A second network with the same job id is refused; deleting twice is harmless."""
    job = _job_id()
    net = create_network(job, 2)
    try:
        with pytest.raises(NetnsError, match="already exist"):
            create_network(job, 2)
    finally:
        assert len(delete_network(net)) == 3
    assert delete_network(net) == []
