"""Tests for lab.workload.model_server: real HTTP against the model server pod."""

from __future__ import annotations

import aiohttp
import pytest

from lab.workload.model_server import ModelServerProgram
from tests.lab.workload.conftest import Start

pytestmark = pytest.mark.anyio


async def test_infer_and_healthz(start: Start) -> None:
    """`POST /v1/infer` answers JSON naming the pod; `/healthz` answers ok; bad JSON is a 400."""
    server, ctx = await start(ModelServerProgram, "127.0.54.1", {"PORT": "0", "COMPUTE_MS": "1"})
    assert server.ready()
    base = f"http://127.0.54.1:{server.port}"
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/v1/infer", json={"prompt": "hi"}) as resp:
            assert resp.status == 200
            body = await resp.json()
        assert body["pod"] == ctx.name and body["output"] == "echo: hi"
        async with session.get(f"{base}/healthz") as resp:
            assert resp.status == 200 and await resp.text() == "ok"
        async with session.post(f"{base}/v1/infer", data=b"[not json") as resp:
            assert resp.status == 400


async def test_stop_is_idempotent_and_closes_the_port(start: Start) -> None:
    """After stop (twice) the port refuses connections and the pod is not ready."""
    server, _ = await start(ModelServerProgram, "127.0.54.1", {"PORT": "0"})
    port = server.port
    await server.stop()
    await server.stop()
    assert not server.ready()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.54.1:{port}/healthz")
