"""Pod sandboxes (lab/sandbox.py): real network namespaces bridged onto a slot's pod network, with files mounted at
fixed paths in a private mount namespace."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.network import PodNetwork
from lab.sandbox import SERVICE_ACCOUNT_DIR, PodSandbox, remove_sandboxes, sandboxes
from tests.conftest import poll
from tests.lab.udp import ask

SLOT = 7  # the last slot: clear of the labs other tests start (they take the first free one)

SERVER = """
import os, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53))
token = open(os.path.join(os.environ["FILES"], "token")).read()
while True:
    data, peer = s.recvfrom(100)
    s.sendto(f"{os.environ['NAME']}:{token}:".encode() + data, peer)
"""


@pytest.fixture
def network(require_root: None) -> Iterator[PodNetwork]:
    """Slot 7's pod network with one node address, removed afterwards."""
    net = PodNetwork(SLOT, 1)
    net.create()
    try:
        yield net
    finally:
        remove_sandboxes(SLOT)
        net.destroy()


def test_two_sandboxes_bind_the_same_port_and_each_is_reached_at_its_pod_ip(network: PodNetwork, tmp_path: Path) -> None:
    """Two programs both bind 0.0.0.0:53, each in its own sandbox; the host reaches each at its pod IP, each sees
    the files mounted for it at the service-account path, and this machine's /run is untouched."""
    files = tmp_path / "sa"
    files.mkdir()
    (files / "token").write_text("t0k3n")
    boxes = [PodSandbox(network, f"uid-{i}", network.pod_ips()[i], network.node_ip(0)) for i in range(2)]
    procs = []
    try:
        for i, box in enumerate(boxes):
            box.create()
            env = {**os.environ, "NAME": f"pod{i}", "FILES": SERVICE_ACCOUNT_DIR}
            procs.append(subprocess.Popen(box.command([sys.executable, "-c", SERVER], files), env=env))
        for i, box in enumerate(boxes):
            assert poll(lambda b=box: ask(b.ip, 53), 10, f"pod{i} answering") == f"pod{i}:t0k3n:ping".encode()
        assert not Path(SERVICE_ACCOUNT_DIR).exists()
        assert sorted(sandboxes(SLOT)) == sorted(b.netns for b in boxes)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        for box in boxes:
            box.destroy()
    assert sandboxes(SLOT) == []
    assert all(subprocess.run(["ip", "link", "show", b.veth], capture_output=True, check=False).returncode != 0 for b in boxes)


def test_a_sandbox_reaches_the_hosts_addresses_on_the_bridge(network: PodNetwork, tmp_path: Path) -> None:
    """A program in a sandbox connects to a server listening on the node's address on the bridge (where the API
    server listens on the real plane), with no IP forwarding on the host."""
    box = PodSandbox(network, "uid-client", network.pod_ips()[0], network.node_ip(0))
    box.create()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((network.node_ip(0), 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        code = f"import socket; c = socket.create_connection(('{network.node_ip(0)}', {port}), 3); c.sendall(b'hi')"
        done = subprocess.run(box.command([sys.executable, "-c", code], tmp_path), capture_output=True, text=True, check=False,
                              timeout=30)
        assert done.returncode == 0, done.stderr
        server.settimeout(5)
        conn, peer = server.accept()
        assert peer[0] == box.ip and conn.recv(10) == b"hi"
        conn.close()
    finally:
        server.close()
        box.destroy()


def test_remove_sandboxes_clears_what_a_killed_runtime_left(network: PodNetwork) -> None:
    """Sandboxes nobody destroyed are found by slot and removed with their veth pairs."""
    boxes = [PodSandbox(network, f"orphan-{i}", network.pod_ips()[i], network.node_ip(0)) for i in range(2)]
    for box in boxes:
        box.create()
    assert remove_sandboxes(SLOT) == sorted(b.netns for b in boxes)
    assert sandboxes(SLOT) == []
    assert all(subprocess.run(["ip", "link", "show", b.veth], capture_output=True, check=False).returncode != 0 for b in boxes)
