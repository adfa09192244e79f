"""Fixtures for the DNS tests: the fake API server and a factory of CoreDnsProgram replicas."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from lab.dns.program import CoreDnsProgram
from lab.dns.testing import coredns_context
from tests.lab.dns.fake_kubeapi import TOKEN, FakeKubeApi, endpoints, service

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
        api_url: str, env: dict[str, str] | None = None, timeout: float | None = None, ip: str = "127.0.53.1"
    ) -> CoreDnsProgram:
        program = CoreDnsProgram(startup_sync_timeout=timeout)
        started.append(program)
        await program.start(coredns_context(api_url, TOKEN, env, ip))
        return program

    try:
        yield _start
    finally:
        for program in started:
            await program.stop()
