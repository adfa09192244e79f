"""Pod IP allocation: unique loopback addresses in 127.10.0.0/15 (about 130k pods)."""

from __future__ import annotations

from lab.runtime.errors import LabError


class IpPool:
    """Hands out and takes back pod IPs; released addresses are reused last-in first-out."""

    def __init__(self, first_octet: int = 10, blocks: int = 2) -> None:
        self._first = first_octet
        self._size = blocks * 65536
        self._next = 1
        self._free: list[int] = []
        self.in_use: set[str] = set()

    def _ip(self, n: int) -> str:
        return f"127.{self._first + n // 65536}.{(n // 256) % 256}.{n % 256}"

    def allocate(self) -> str:
        """A free pod IP."""
        while True:
            if self._free:
                n = self._free.pop()
            elif self._next < self._size:
                n, self._next = self._next, self._next + 1
            else:
                raise LabError("pod IP pool exhausted")
            if n % 256 in (0, 255):
                continue
            ip = self._ip(n)
            self.in_use.add(ip)
            return ip

    def release(self, ip: str) -> None:
        """Return a pod IP to the pool (unknown addresses are ignored)."""
        if ip not in self.in_use:
            return
        self.in_use.discard(ip)
        a, b, c = (int(x) for x in ip.split(".")[1:])
        self._free.append((a - self._first) * 65536 + b * 256 + c)
