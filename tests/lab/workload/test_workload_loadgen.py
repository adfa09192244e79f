"""Tests for lab.workload.loadgen: open-loop load against a real model server."""

from __future__ import annotations

import pytest

from lab.workload.loadgen import LoadGenProgram, outcome_of
from lab.workload.model_server import ModelServerProgram
from tests.lab.workload.conftest import Start, metric, poll

pytestmark = pytest.mark.anyio


async def test_steady_load_succeeds(start: Start) -> None:
    """Load at 50/s against a model server produces `ok` outcomes and a latency histogram."""
    server, _ = await start(ModelServerProgram, "127.0.55.1", {"PORT": "0", "COMPUTE_MS": "1"})
    env = {"RATE": "50", "TARGET_URL": f"http://127.0.55.1:{server.port}/v1/infer"}
    load, ctx = await start(LoadGenProgram, "127.0.55.2", env)
    assert load.ready()
    await poll(lambda: metric("loadgen_requests_total", ctx.name, outcome="ok") >= 5)
    assert metric("loadgen_request_duration_seconds_count", ctx.name) >= 5


async def test_refused_target_counts_connect_errors(start: Start) -> None:
    """Nothing listening on the target yields `connect` outcomes, not crashes."""
    server, _ = await start(ModelServerProgram, "127.0.55.1", {"PORT": "0"})
    port = server.port
    await server.stop()
    load, ctx = await start(
        LoadGenProgram, "127.0.55.2", {"RATE": "50", "TARGET_URL": f"http://127.0.55.1:{port}/"}
    )
    await poll(lambda: metric("loadgen_requests_total", ctx.name, outcome="connect") >= 3)
    assert load.ready()


async def test_inflight_bound_drops_ticks(start: Start) -> None:
    """With one request in flight allowed and a slow server, further ticks are counted as dropped."""
    server, _ = await start(ModelServerProgram, "127.0.55.1", {"PORT": "0", "COMPUTE_MS": "1000"})
    env = {"RATE": "50", "MAX_INFLIGHT": "1", "TARGET_URL": f"http://127.0.55.1:{server.port}/v1/infer"}
    load, ctx = await start(LoadGenProgram, "127.0.55.2", env)
    await poll(lambda: metric("loadgen_requests_total", ctx.name, outcome="dropped") >= 5)
    assert load.sent == 1
    await load.stop()
    await load.stop()
    assert not load.ready()


def test_outcome_labels() -> None:
    """HTTP statuses map to ok / http_4xx / http_5xx."""
    assert [outcome_of(s) for s in (200, 302, 404, 503)] == ["ok", "ok", "http_4xx", "http_5xx"]
