"""Fixtures for the training-job tests: torch must be installed, namespaces need root, and a deadline poller."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import TypeVar

import pytest

from tests.conftest import poll as shared_poll
from tests.conftest import require

T = TypeVar("T")

TORCH_HINT = "torch is not installed: uv pip install --python .venv/bin/python --find-links /opt/wheels 'torch==2.13.0+cpu'"


@pytest.fixture
def require_torch() -> None:
    """Tests that run the training worker need the CPU torch build."""
    require(importlib.util.find_spec("torch") is not None, TORCH_HINT)


def wait_for(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.25) -> T:
    """Poll ``check`` until truthy, or fail after ``timeout`` seconds (tests.conftest.poll)."""
    return shared_poll(check, timeout, what, every)


_LISTEN = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7070)); s.listen(8); s.settimeout(20)
print("ready", flush=True)
while True:
    try:
        c, _ = s.accept()
    except TimeoutError:
        break
    c.sendall(b"ok"); c.close()
"""

_CONNECT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], 7070), timeout=float(sys.argv[2])) as c:
        print(c.recv(2).decode())
except ConnectionRefusedError:
    print("refused")
except (TimeoutError, OSError):
    print("timeout")
"""


class Listener:
    """A TCP listener on port 7070 inside a namespace (a real socket server process)."""

    def __init__(self, namespace: str, address: str) -> None:
        import subprocess
        import sys

        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "-c", _LISTEN, address],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def close(self) -> None:
        """Stop the listener."""
        self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def connect(namespace: str, address: str, timeout: float = 2.0) -> str:
    """Connect from ``namespace`` to address:7070: 'ok', 'refused' or 'timeout'."""
    import subprocess
    import sys

    done = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", _CONNECT, address, str(timeout)],
        capture_output=True,
        text=True,
        timeout=timeout + 20,
        check=True,
    )
    return done.stdout.strip()
