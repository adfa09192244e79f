"""The pod network of a lab on the real control plane: TEST-NET addresses on a bridge link, accepted by the real API server."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.network import BLOCKS, NetworkError, PodAddresses, PodNetwork
from lab.testing import LabHandle, running_control_plane

SLOT = 7


@pytest.fixture
def network() -> Iterator[PodNetwork]:
    """Slot 7's network with two node addresses, removed afterwards whatever happens."""
    net = PodNetwork(SLOT, nodes=2)
    net.create()
    try:
        yield net
    finally:
        net.destroy()


def test_slots_are_disjoint_test_net_blocks_clear_of_test_net_1() -> None:
    """Every slot's /26 lies in TEST-NET-2 or -3, no two overlap and none touches 192.0.2.0/24."""
    cidrs = [PodNetwork(k).cidr for k in range(8)]
    assert all(any(c.subnet_of(b) for b in BLOCKS) for c in cidrs)
    assert not any(a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1:])
    assert not any(c.overlaps(ipaddress.ip_network("192.0.2.0/24")) for c in cidrs)
    with pytest.raises(NetworkError, match="slots are 0-7"):
        _ = PodNetwork(8).cidr


def test_pod_addresses_carry_real_tcp_and_udp_and_leave_with_the_link(network: PodNetwork) -> None:
    """Allocated pod IPs are on the link and reachable over TCP and UDP; release and destroy take them off."""
    assert network.addresses() == [network.node_ip(0), network.node_ip(1)]
    pool = PodAddresses(network)
    a, b = pool.allocate(), pool.allocate()
    assert {a, b} <= set(network.addresses()) and a not in (network.node_ip(0), network.node_ip(1))
    with socket.socket() as server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        server.bind((a, 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5, source_address=(b, 0)) as client:
            peer, _ = server.accept()
            assert peer.getpeername()[0] == b
            client.sendall(b"ping")
            assert peer.recv(4) == b"ping"
            peer.close()
        udp.bind((b, 0))
        udp.settimeout(5)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.bind((a, 0))
            sender.sendto(b"dns?", udp.getsockname())
            data, source = udp.recvfrom(16)
        assert (data, source[0]) == (b"dns?", a)
    pool.release(a)
    assert a not in network.addresses() and b in network.addresses()
    pool.release(a)  # idempotent
    network.destroy()
    assert not network.exists() and network.addresses() == []
    network.destroy()  # idempotent


def test_an_address_kept_off_the_link_is_released_without_touching_it(network: PodNetwork) -> None:
    """A sandboxed pod's IP (never on the bridge) goes back to the pool without an error, and can be handed out again."""
    pool = PodAddresses(network)
    boxed = pool.allocate(on_link=False)
    on_link = pool.allocate()
    assert boxed not in network.addresses() and on_link in network.addresses()
    pool.release(boxed)
    assert on_link in network.addresses() and boxed not in pool.in_use
    assert pool.allocate() == boxed and boxed in network.addresses()


def test_a_foreign_address_is_refused_and_changes_nothing(network: PodNetwork) -> None:
    """An address outside the slot is refused with its reason and the link keeps what it had."""
    before = network.addresses()
    with pytest.raises(NetworkError, match="not in slot 7's pod network"):
        network.add("198.51.100.5")
    assert network.addresses() == before


def test_an_exhausted_pool_says_so(network: PodNetwork) -> None:
    """A pool with every pod IP taken raises NetworkError naming the block, not a random failure."""
    pool = PodAddresses(network)
    for _ in network.pod_ips():
        pool.allocate()
    with pytest.raises(NetworkError, match="no free address left"):
        pool.allocate()
    assert len(network.addresses()) == 62


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    """A real control plane with one kwok node."""
    with running_control_plane(Path(tmp_path_factory.mktemp("net-plane")), nodes=1) as handle:
        yield handle


def _apply(lab: LabHandle, doc: str) -> tuple[int, str]:
    done = lab.kubectl("apply", "-f", "-", stdin=doc, context="lab-admin")
    return done.returncode, done.stderr


def test_the_real_api_server_takes_lab_pod_addresses_and_refuses_loopback(plane: LabHandle) -> None:
    """An EndpointSlice and an Endpoints object naming a lab pod IP are stored; a loopback (127.x) address is refused."""
    pod_ip = PodNetwork(0).pod_ips()[0]

    def docs(ip: str, name: str) -> str:
        return f"""
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}, namespace: default, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
endpoints: [{{addresses: ["{ip}"]}}]
ports: [{{port: 1053, protocol: UDP}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: {name}, namespace: default}}
subsets: [{{addresses: [{{ip: "{ip}"}}], ports: [{{port: 1053, protocol: UDP}}]}}]
"""

    code, err = _apply(plane, docs(pod_ip, "lab-pod"))
    assert code == 0, err
    got = plane.kubectl("get", "endpointslice", "lab-pod", "-o", "jsonpath={.endpoints[0].addresses[0]}",
                        context="lab-admin")
    assert got.stdout == pod_ip
    code, err = _apply(plane, docs("127.10.0.5", "loopback-pod"))
    assert code != 0 and "may not be in the loopback range" in err
