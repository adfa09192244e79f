"""Small pod programs for tests and experiments (run them with image ``lab/program`` and the
``lab.gameday/program: lab.runtime.testprograms:<Class>`` annotation).

- ``UdpEchoProgram``: echoes UDP datagrams and TCP bytes on (pod_ip, PORT) with a ``<pod>:`` prefix.
- ``FileReadyProgram``: ready exactly while the file named by env ``READY_FILE`` exists.
- ``WhoAmIProgram``: asks the API server who it is (SelfSubjectReview with the pod's token) and writes
  ``{"token", "user", "flow_schema_uid", "priority_level_uid"}`` (the APF response headers) as JSON to
  the file named by env ``OUT_FILE``; ready once written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
from pathlib import Path
from typing import cast

import aiohttp

from lab.pods import PodContext
from lab.runtime.files import write_atomic


class _Echo(asyncio.DatagramProtocol):
    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(self.prefix + data, addr)


class UdpEchoProgram:
    """Echo server on UDP and TCP (pod_ip, PORT default 1053)."""

    def __init__(self) -> None:
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._prefix = b""

    async def start(self, ctx: PodContext) -> None:
        """Bind both sockets."""
        port = int(ctx.env.get("PORT", "1053"))
        self._prefix = f"{ctx.name}:".encode()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Echo(self._prefix), local_addr=(ctx.pod_ip, port))
        self._udp = transport
        self._tcp = await asyncio.start_server(self._serve, ctx.pod_ip, port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(4096):
                writer.write(self._prefix + data)
                await writer.drain()
        writer.close()

    def ready(self) -> bool:
        """Ready while both sockets are open."""
        return self._udp is not None and self._tcp is not None

    async def stop(self) -> None:
        """Close both sockets."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None


class FileReadyProgram:
    """Ready while a file exists (tests flip readiness by creating and removing it)."""

    def __init__(self) -> None:
        self._path = ""

    async def start(self, ctx: PodContext) -> None:
        """Remember the file to watch."""
        self._path = ctx.env.get("READY_FILE", "")

    def ready(self) -> bool:
        """Whether READY_FILE exists."""
        return bool(self._path) and os.path.exists(self._path)

    async def stop(self) -> None:
        """Nothing to stop."""


class WhoAmIProgram:
    """Reports the identity and APF classification of the pod's service-account token."""

    def __init__(self) -> None:
        self._done = False

    async def start(self, ctx: PodContext) -> None:
        """One SelfSubjectReview with the pod's token; the answer goes to OUT_FILE."""
        url = f"{ctx.api_url.rstrip('/')}/apis/authentication.k8s.io/v1/selfsubjectreviews"
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        headers = {"Authorization": f"Bearer {ctx.api_token}"}
        tls: ssl.SSLContext | bool = ssl.create_default_context(cafile=ctx.api_ca_file) if ctx.api_ca_file else True
        async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=headers, ssl=tls) as resp:
            answer = await resp.json(content_type=None)
            out = {
                "status": resp.status,
                "token": ctx.api_token,
                "user": (answer.get("status") or {}).get("userInfo"),
                "flow_schema_uid": resp.headers.get("X-Kubernetes-PF-FlowSchema-UID"),
                "priority_level_uid": resp.headers.get("X-Kubernetes-PF-PriorityLevel-UID"),
            }
        await asyncio.to_thread(write_atomic, Path(ctx.env["OUT_FILE"]), json.dumps(out))
        self._done = True

    def ready(self) -> bool:
        """Ready once the answer is written."""
        return self._done

    async def stop(self) -> None:
        """Nothing to stop."""
