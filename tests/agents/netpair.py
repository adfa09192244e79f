"""Two network namespaces joined by a veth pair on TEST-NET-1, with real TCP listeners and probes.

``netpair()`` creates ``gdtest-<rand>-a`` (192.0.2.1) and ``gdtest-<rand>-b`` (192.0.2.2) and always
deletes them (and kills the listeners it started) on exit. Needs root.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

IP_A, IP_B = "192.0.2.1", "192.0.2.2"

_LISTENER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64); print("ready", flush=True)
while True:
    c, _ = s.accept(); c.close()
"""

_PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close(); print("ok")
except socket.timeout: print("timeout")
except ConnectionRefusedError: print("refused")
except ConnectionResetError: print("reset")
except OSError as e: print("error", e.errno)
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output."""
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=30)


@dataclass
class NetPair:
    """The two namespaces and the processes started in them."""

    a: str
    b: str
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def listen(self, ns: str, ip: str, port: int) -> None:
        """Start a TCP listener in ``ns`` that accepts and closes every connection."""
        p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", _LISTENER, ip, str(port)],
                             stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"

    def probe(self, ns: str, ip: str, port: int, timeout: float = 1.0) -> str:
        """Try a TCP connect from ``ns``: 'ok', 'timeout', 'refused', 'reset' or 'error N'."""
        return sh("ip", "netns", "exec", ns, sys.executable, "-c", _PROBE, ip, str(port), str(timeout)).stdout.strip()

    def iptables(self, ns: str) -> str:
        """``iptables -S`` inside ``ns``."""
        return sh("ip", "netns", "exec", ns, "iptables", "-S").stdout

    def nft(self, ns: str) -> str:
        """``nft list ruleset`` inside ``ns``."""
        return sh("ip", "netns", "exec", ns, "nft", "list", "ruleset").stdout


@contextmanager
def netpair() -> Iterator[NetPair]:
    """Create the pair; always kill its listeners and delete both namespaces."""
    tag = secrets.token_hex(3)
    pair = NetPair(f"gdtest-{tag}-a", f"gdtest-{tag}-b")
    va, vb = f"gdv{tag}a", f"gdv{tag}b"
    try:
        for ns in (pair.a, pair.b):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", va, "netns", pair.a, "type", "veth", "peer", "name", vb, "netns", pair.b)
        sh("ip", "-n", pair.a, "addr", "add", f"{IP_A}/24", "dev", va)
        sh("ip", "-n", pair.b, "addr", "add", f"{IP_B}/24", "dev", vb)
        sh("ip", "-n", pair.a, "link", "set", va, "up")
        sh("ip", "-n", pair.b, "link", "set", vb, "up")
        yield pair
    finally:
        for p in pair.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
            if p.stdout is not None:
                p.stdout.close()
        for ns in (pair.a, pair.b):
            sh("ip", "netns", "del", ns, check=False)
