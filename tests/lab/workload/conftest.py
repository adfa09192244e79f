"""Fixtures for the workload tests: asyncio backend, a program starter that always stops, a real API server, and
the real CoreDNS (the lab's build) as the workload's DNS server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import dns.asyncquery
import dns.exception
import dns.message
import pytest
from prometheus_client import REGISTRY

from lab.build import default_cache_dir, ensure_built
from lab.pods import PodContext
from lab.testing import LabHandle, running_api

Start = Callable[..., Awaitable[Any]]
Dns = Callable[..., Awaitable["CoreDns"]]


def context(
    ip: str, env: dict[str, str], api_url: str = "http://127.0.0.1:1", token: str = "t"
) -> PodContext:
    """A PodContext for a workload pod on ``ip``."""
    return PodContext(
        namespace="default",
        name=f"pod-{uuid.uuid4().hex[:8]}",
        node_name="node-1",
        pod_ip=ip,
        labels={},
        env=env,
        args=[],
        api_url=api_url,
        api_token=token,
    )


def metric(name: str, pod: str, **labels: str) -> float:
    """The value of one sample in the default registry for ``pod`` (0.0 when absent)."""
    return REGISTRY.get_sample_value(name, {"pod": pod, **labels}) or 0.0


async def poll(check: Callable[[], bool], timeout: float = 10.0, every: float = 0.05) -> None:
    """Poll ``check`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(every)


def _free_port(ip: str) -> int:
    """A port free on ``ip`` for both UDP and TCP (CoreDNS serves both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
            udp.bind((ip, 0))
            port = int(udp.getsockname()[1])
            try:
                tcp.bind((ip, port))
            except OSError:
                continue
            return port


class CoreDns:
    """The lab's CoreDNS binary serving ``ip``: fixed names through its ``hosts`` plugin (the API server refuses
    loopback endpoints, where the tests' model servers listen) and the rest of cluster.local through its
    ``kubernetes`` plugin from the real API server (NXDOMAIN for a Service that does not exist)."""

    def __init__(self, binary: Path, directory: Path, ip: str, kubeconfig: Path,
                 hosts: dict[str, list[str]]) -> None:
        self.ip, self.port, self.ready_port = ip, _free_port(ip), _free_port(ip)
        self.log = directory / "coredns.log"
        entries = "".join(f"        {address} {name}\n" for name, addresses in hosts.items() for address in addresses)
        hosts_block = f"    hosts {{\n{entries}        ttl 30\n        fallthrough\n    }}\n" if hosts else ""
        self.corefile = directory / "Corefile"
        self.corefile.write_text(
            f".:{self.port} {{\n    bind {ip}\n    errors\n    ready {ip}:{self.ready_port}\n{hosts_block}"
            f"    kubernetes cluster.local {{\n        kubeconfig {kubeconfig} lab\n        ttl 30\n    }}\n}}\n")
        self.binary = binary
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 30.0) -> None:
        """Start CoreDNS and wait until its ready plugin says so and it answers a query."""
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                str(self.binary), "-conf", str(self.corefile), stdin=asyncio.subprocess.DEVNULL, stdout=log,
                stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not await self._serving():
            if self.proc.returncode is not None or time.monotonic() > deadline:
                await self.stop()
                pytest.fail(f"CoreDNS did not serve within {timeout}s: {self.log.read_text()[-2000:]}")
            await asyncio.sleep(0.1)

    async def _serving(self) -> bool:
        try:
            async with aiohttp.ClientSession() as session, session.get(
                    f"http://{self.ip}:{self.ready_port}/ready", timeout=aiohttp.ClientTimeout(total=1)) as resp:
                if resp.status != 200:
                    return False
            await dns.asyncquery.udp(dns.message.make_query("cluster.local.", "SOA"), self.ip, port=self.port,
                                     timeout=0.5)
            return True
        except (aiohttp.ClientError, dns.exception.DNSException, OSError, TimeoutError):
            return False

    async def stop(self) -> None:
        """SIGTERM (SIGKILL after 10 s) and wait; idempotent."""
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@dataclass
class Namespace:
    """A test's namespace on the real API server, with the ClusterIP Service ``web``."""

    ns: str
    web_ip: str

    def name(self, service: str) -> str:
        """The cluster DNS name of a service in this namespace."""
        return f"{service}.{self.ns}.svc.cluster.local"


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio (the lab's loop)."""
    return "asyncio"


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """``await start(ProgramClass, ip, env, **ctx_kwargs)`` starts a program; all are stopped at teardown."""
    started: list[Any] = []

    async def _start(cls: type, ip: str, env: dict[str, str], **kwargs: str) -> tuple[Any, PodContext]:
        program = cls()
        started.append(program)
        ctx = context(ip, env, **kwargs)
        await program.start(ctx)
        return program, ctx

    try:
        yield _start
    finally:
        for program in reversed(started):
            await program.stop()


@pytest.fixture(scope="module")
def real_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    """Only the real etcd and kube-apiserver, shared by a module's tests (CoreDNS's kubernetes plugin reads it)."""
    with running_api(tmp_path_factory.mktemp("apiserver")) as api:
        yield api


@pytest.fixture
def namespace(real_api: LabHandle) -> Namespace:
    """A fresh namespace with the ClusterIP Service ``web`` (its address from the service range)."""
    from kubernetes import client

    ns = f"t-{uuid.uuid4().hex[:8]}"
    with real_api.client() as api:
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        web = core.create_namespaced_service(ns, client.V1Service(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)], selector={"app": "web"})))
    assert web.spec is not None and web.spec.cluster_ip
    return Namespace(ns, web.spec.cluster_ip)


@pytest.fixture
async def dns_server(real_api: LabHandle, tmp_path: Path) -> AsyncIterator[Dns]:
    """``await dns_server(ip, {name: [addresses]})`` starts the real CoreDNS on ``ip``; all are stopped at teardown."""
    binary = ensure_built(default_cache_dir(os.environ.get("XDG_CACHE_HOME"), Path.home()), ("coredns",))["coredns"]
    started: list[CoreDns] = []

    async def _start(ip: str, hosts: dict[str, list[str]] | None = None) -> CoreDns:
        directory = tmp_path / f"coredns-{len(started)}"
        directory.mkdir()
        server = CoreDns(binary, directory, ip, real_api.kubeconfig, hosts or {})
        started.append(server)
        await server.start()
        return server

    try:
        yield _start
    finally:
        for server in reversed(started):
            await server.stop()
