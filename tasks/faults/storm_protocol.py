"""A bare ``asyncio.Protocol`` HTTP/1.1 client for the storm: pre-encoded GETs over keep-alive connections.

Much cheaper per request than aiohttp (DEPENDENCIES.md: ≈0.7–0.95× of wrk vs ≈0.1×), which matters when
one runner core has to out-pace an API server. It understands exactly what an API server sends back:
``Content-Length`` or ``Transfer-Encoding: chunked`` bodies. One request in flight per connection.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit


class _Conn(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail the pending request, if any."""
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    def send(self, data: bytes) -> asyncio.Future[int]:
        """Write one request; the future resolves to the response status."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        """Accumulate; resolve the waiter once a whole response is in the buffer."""
        self.buf += data
        status = self._complete()
        if status is not None and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def _complete(self) -> int | None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        body = end + 4
        if "content-length" in headers:
            total = body + int(headers["content-length"])
            if len(self.buf) < total:
                return None
            del self.buf[:total]
            return status
        if headers.get("transfer-encoding", "").lower() == "chunked":
            pos = body
            while True:
                line_end = self.buf.find(b"\r\n", pos)
                if line_end < 0:
                    return None
                size = int(bytes(self.buf[pos:line_end]).split(b";")[0], 16)
                nxt = line_end + 2 + size + 2
                if len(self.buf) < nxt:
                    return None
                pos = nxt
                if size == 0:
                    del self.buf[:pos]
                    return status
        del self.buf[:body]  # no body (e.g. 204)
        return status


class ProtocolClient:
    """A pool of keep-alive connections issuing the same pre-encoded GET."""

    def __init__(self, url: str, path: str, token: str | None, size: int, ssl_ctx: ssl.SSLContext | None) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl_ctx if parts.scheme == "https" else None
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: application/json\r\n"
                        f"User-Agent: gameday-storm\r\n{auth}\r\n").encode()
        self.size = size
        self.idle: asyncio.Queue[_Conn | None] = asyncio.Queue()
        for _ in range(size):
            self.idle.put_nowait(None)  # None: a slot whose connection is opened lazily
        self.conns: list[_Conn] = []

    async def _open(self) -> _Conn:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(_Conn, self.host, self.port, ssl=self.ssl)
        self.conns.append(proto)
        return proto

    async def get(self, timeout: float = 60.0) -> int | None:
        """Issue one request on an idle connection; the status, or None on a transport error."""
        conn = await self.idle.get()
        try:
            if conn is None or conn.closed:
                conn = await self._open()
            status = await asyncio.wait_for(conn.send(self.request), timeout)
            return status
        except (TimeoutError, OSError, ConnectionError, ValueError, IndexError):
            if conn is not None and conn.transport is not None:
                conn.transport.close()
            conn = None
            return None
        finally:
            self.idle.put_nowait(conn)

    def close(self) -> None:
        """Close every connection."""
        for c in self.conns:
            if c.transport is not None:
                c.transport.close()
