"""Tests for lab.training.netns: namespaces per rank on a bridge, always removed."""

from __future__ import annotations

import uuid

import pytest

from lab.training.errors import NetnsError
from lab.training.job import REPO_ROOT
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


def test_non_root_gets_a_clear_error() -> None:
    """Run as an unprivileged user, creating the network fails with NotRootError saying root is needed."""
    import subprocess
    import sys

    code = (
        "import os\n"
        "from lab.training.errors import NotRootError\n"
        "from lab.training.netns import create_network\n"
        "os.setgid(65534)\nos.setuid(65534)\n"
        "try:\n    create_network('nr1', 2)\nexcept NotRootError as e:\n    print('NotRootError:', e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False,
        cwd="/", env={"PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    assert done.stdout.startswith("NotRootError: network namespaces need root"), done.stdout + done.stderr
    assert list_namespaces("nr1") == []
