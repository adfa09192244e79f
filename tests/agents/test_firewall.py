"""nccl-partition through a real agent into real network namespaces: traffic cut, then restored, chains gone."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from agents.testing import AgentProcess, running_agent
from lab.runtime.testing import wait_for
from lab.testing import LabHandle
from tests.agents.conftest import AGENT_SA, call
from tests.agents.netpair import IP_A, IP_B, NetPair, netpair
from tests.conftest import require

PORT_B, PORT_A = 5301, 5302


@pytest.fixture(scope="module")
def net() -> Iterator[NetPair]:
    """Two namespaces with a listener in each (shared by the module; each test leaves them clean)."""
    require(os.geteuid() == 0, "needs root (network namespaces, iptables): run as root")
    with netpair() as pair:
        pair.listen(pair.b, IP_B, PORT_B)
        pair.listen(pair.a, IP_A, PORT_A)
        yield pair


@pytest.fixture(scope="module")
def module_node_agent(tmp_path_factory: pytest.TempPathFactory, api: LabHandle,
                      net: NetPair) -> Iterator[AgentProcess]:
    """An agent that applies partitions inside namespace a."""
    with running_agent(tmp_path_factory.mktemp("fw"), "gpu-1", api.url, api.token_for(AGENT_SA), nvml="none",
                       extra_args=["--netns", net.a, "--allow-cidr", "192.0.2.0/24"], api_ca_file=api.ca_file) as proc:
        yield proc


@pytest.fixture
def node_agent(module_node_agent: AgentProcess, api: LabHandle, net: NetPair) -> Iterator[AgentProcess]:
    """The module's agent, running, with namespace a free of gameday rules before and after each test."""
    agent = module_node_agent
    if agent.proc is None or agent.proc.poll() is not None:
        agent.start()
    assert _clean(net)
    yield agent
    if agent.proc is None or agent.proc.poll() is not None:
        agent.start()
    call(agent.url, "DELETE", "/v1/faults", api.runner_token)


def _partition(fault_id: str, ttl: float = 30, **params: Any) -> dict[str, Any]:
    return {"fault_id": fault_id, "run_id": "run-1", "ttl_seconds": ttl,
            "params": {"kind": "nccl-partition", "peers": [IP_B], **params}}


def _clean(net: NetPair) -> bool:
    return "GD-" not in net.iptables(net.a) and "gameday_" not in net.nft(net.a)


def _both_ways(net: NetPair, timeout: float = 0.5) -> tuple[str, str]:
    return net.probe(net.a, IP_B, PORT_B, timeout), net.probe(net.b, IP_A, PORT_A, timeout)


@pytest.mark.root
@pytest.mark.parametrize(("backend", "action", "cut"), [("iptables", "DROP", "timeout"), ("iptables", "REJECT", "refused"),
                                                        ("nft", "DROP", "timeout"), ("nft", "REJECT", "refused")])
def test_partition_cuts_traffic_and_revert_restores_it(node_agent: AgentProcess, api: LabHandle, net: NetPair,
                                                       backend: str, action: str, cut: str) -> None:
    """DROP makes connects time out and REJECT refuses them fast, both ways; revert removes exactly the chain/table."""
    assert _both_ways(net) == ("ok", "ok")
    status, st = call(node_agent.url, "POST", "/v1/faults", api.runner_token,
                      _partition("p1", backend=backend, action=action))
    assert status == 201, st
    assert _both_ways(net) == (cut, cut)
    _, st = call(node_agent.url, "GET", "/v1/faults/p1", api.runner_token)
    assert st["evidence"]["landed"] is True and st["evidence"]["details"]["transport"] == "sockets"
    status, res = call(node_agent.url, "DELETE", "/v1/faults/p1", api.runner_token)
    assert res["reverted"] is True
    assert _both_ways(net) == ("ok", "ok") and _clean(net)


@pytest.mark.root
def test_partition_egress_port_range_only(node_agent: AgentProcess, api: LabHandle, net: NetPair) -> None:
    """An egress partition on one port blocks only that port from a to b; b to a still works."""
    call(node_agent.url, "POST", "/v1/faults", api.runner_token,
         _partition("p2", direction="egress", port_range=[PORT_B, PORT_B]))
    assert _both_ways(net) == ("timeout", "ok")
    assert call(node_agent.url, "DELETE", "/v1/faults", api.runner_token)[0] == 200
    assert _both_ways(net) == ("ok", "ok") and _clean(net)


@pytest.mark.root
def test_partition_lease_expiry_heals(node_agent: AgentProcess, api: LabHandle, net: NetPair) -> None:
    """With no renewals (runner SIGKILLed), the agent removes the partition when the lease ends."""
    call(node_agent.url, "POST", "/v1/faults", api.runner_token, _partition("p3", ttl=1, action="REJECT"))
    assert _both_ways(net)[0] == "refused"
    wait_for(lambda: _clean(net), timeout=10)
    assert _both_ways(net) == ("ok", "ok")


@pytest.mark.root
def test_partition_agent_restart_heals(node_agent: AgentProcess, api: LabHandle, net: NetPair) -> None:
    """kill -9 the agent: the partition stays; restarted with the same state file, it removes it."""
    call(node_agent.url, "POST", "/v1/faults", api.runner_token, _partition("p4", ttl=100, backend="nft"))
    node_agent.kill()
    assert "gameday_" in net.nft(net.a) and _both_ways(net)[0] == "timeout"
    node_agent.start()
    assert _clean(net) and _both_ways(net) == ("ok", "ok")


@pytest.mark.root
def test_refused_partition_changes_no_rules(node_agent: AgentProcess, api: LabHandle, net: NetPair) -> None:
    """A CIDR outside the allowed list is refused with 422 and no rule appears."""
    before = net.iptables(net.a), net.nft(net.a)
    status, err = call(node_agent.url, "POST", "/v1/faults", api.runner_token, _partition("p5") | {
        "params": {"kind": "nccl-partition", "peers": ["198.51.100.0/24"]}})
    assert status == 422 and "outside the allowed CIDRs" in err["message"]
    assert (net.iptables(net.a), net.nft(net.a)) == before
