"""Fixtures for the DNS tests: the real API server (a subprocess), the fake one, and DNS replicas."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from lab.apiserver.testing import RunningApiServer, running_apiserver
from lab.dns.program import CoreDnsProgram
from lab.dns.testing import coredns_context
from tests.lab.dns.fake_kubeapi import TOKEN, FakeKubeApi, endpoints, service
from tests.lab.dns.kube_rest import Cluster, make_cluster

StartDns = Callable[..., Awaitable[CoreDnsProgram]]


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio (the lab's loop)."""
    return "asyncio"


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeKubeApi]:
    """A running fake API server with one normal and one headless service."""
    api = FakeKubeApi()
    api.put("services", service("web"))
    api.put("endpoints", endpoints("web", ["127.0.1.1"]))
    api.put("services", service("model", cluster_ip="None"))
    api.put("endpoints", endpoints("model", ["127.0.1.2", "127.0.1.3"], not_ready=["127.0.1.4"]))
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


@pytest.fixture
async def start_dns() -> AsyncIterator[StartDns]:
    """Start CoreDnsProgram replicas (unique pod names); every one is stopped at teardown."""
    started: list[CoreDnsProgram] = []

    async def _start(
        api_url: str,
        env: dict[str, str] | None = None,
        timeout: float | None = None,
        ip: str = "127.0.53.1",
        token: str = TOKEN,
    ) -> CoreDnsProgram:
        program = CoreDnsProgram(startup_sync_timeout=timeout)
        started.append(program)
        await program.start(coredns_context(api_url, token, env, ip))
        return program

    try:
        yield _start
    finally:
        for program in started:
            await program.stop()


def start_real_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApiServer]:
    """Run the emulated API server with a kube-system/coredns service account."""
    path = tmp_path_factory.mktemp("apiserver")
    with running_apiserver(path, nodes=["node-1"], service_accounts=[("kube-system", "coredns")]) as api:
        yield api


@pytest.fixture(scope="module")
def real_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApiServer]:
    """The real (emulated) API server, shared by a module's tests (each test gets its own namespace)."""
    yield from start_real_apiserver(tmp_path_factory)


@pytest.fixture
async def cluster(real_api: RunningApiServer) -> AsyncIterator[Cluster]:
    """A fresh namespace on the module's real API server."""
    c = await make_cluster(real_api)
    try:
        yield c
    finally:
        await c.kube.close()
