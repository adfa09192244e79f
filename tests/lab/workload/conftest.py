"""Fixtures for the workload tests: asyncio backend and a program starter that always stops."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from lab.pods import PodContext

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
