"""A UDP question for the lab's tests: what a server at an address answers, if anything."""

from __future__ import annotations

import socket


def ask(ip: str, port: int, payload: bytes = b"ping", timeout: float = 1.0) -> bytes | None:
    """The first datagram a UDP server at (ip, port) answers payload with (None: no answer in time)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(payload, (ip, port))
            return sock.recvfrom(200)[0]
        except OSError:
            return None
