"""Fixtures for the workload tests: asyncio backend, a program starter that always stops, a real API server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from lab.apiserver.testing import RunningApiServer, running_apiserver
from lab.pods import PodContext
from tests.lab.dns.kube_rest import Cluster, make_cluster

Start = Callable[..., Awaitable[Any]]


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
def real_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApiServer]:
    """The real (emulated) API server, shared by a module's tests."""
    path = tmp_path_factory.mktemp("apiserver")
    with running_apiserver(path, service_accounts=[("kube-system", "coredns")]) as api:
        yield api


@pytest.fixture
async def cluster(real_api: RunningApiServer) -> AsyncIterator[Cluster]:
    """A fresh namespace (with `web` and headless `model`) on the module's real API server."""
    c = await make_cluster(real_api)
    try:
        yield c
    finally:
        await c.kube.close()
