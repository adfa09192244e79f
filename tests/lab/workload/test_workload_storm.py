"""Tests for lab.workload.storm: cluster-wide LISTs, Retry-After, watch churn (against a recorder)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from lab.workload.storm import ListStormProgram, collection_path
from tests.lab.workload.conftest import Start, metric, poll

pytestmark = pytest.mark.anyio


class Recorder:
    """An HTTP server that records requests and answers 429 (Retry-After) for the first `throttle` LISTs."""

    def __init__(self, throttle: int, retry_after: str = "1") -> None:
        self.throttle, self.retry_after = throttle, retry_after
        self.lists: list[tuple[float, web.Request]] = []
        self.watches = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        if request.query.get("watch") == "true":
            self.watches += 1
            return web.json_response({})
        self.lists.append((time.monotonic(), request))
        if len(self.lists) <= self.throttle:
            return web.json_response(
                {"kind": "Status", "code": 429}, status=429, headers={"Retry-After": self.retry_after}
            )
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    """A recorder that throttles the first LIST."""
    rec = Recorder(throttle=1)
    await rec.start()
    try:
        yield rec
    finally:
        assert rec.runner is not None
        await rec.runner.cleanup()


async def test_lists_without_resource_version_and_honours_retry_after(
    start: Start, recorder: Recorder
) -> None:
    """LISTs are cluster-wide, carry the token and no resourceVersion; after a 429 the next waits Retry-After."""
    storm, ctx = await start(
        ListStormProgram, "127.0.56.1", {"RATE": "50"}, api_url=recorder.url, token="storm-token"
    )
    await poll(lambda: len(recorder.lists) >= 3)
    (t0, first), (t1, _) = recorder.lists[0], recorder.lists[1]
    assert first.path == "/api/v1/pods" and "resourceVersion" not in first.query
    assert first.headers["Authorization"] == "Bearer storm-token"
    assert t1 - t0 >= 0.9  # 50/s would have sent it after 20 ms: the 1 s Retry-After was honoured
    assert storm.retry_waits == [1.0]
    assert metric("liststorm_requests_total", ctx.name, code="429") == 1
    assert metric("liststorm_requests_total", ctx.name, code="200") >= 2


async def test_watch_churn_and_other_resources(start: Start, recorder: Recorder) -> None:
    """WATCH_CHURN=1 opens watches; RESOURCE picks the collection path; CONCURRENCY workers all run."""
    recorder.throttle = 0
    env = {"RATE": "40", "CONCURRENCY": "3", "WATCH_CHURN": "1", "RESOURCE": "deployments"}
    storm, ctx = await start(ListStormProgram, "127.0.56.1", env, api_url=recorder.url)
    await poll(lambda: recorder.watches >= 3 and len(recorder.lists) >= 3)
    assert {r.path for _, r in recorder.lists} == {"/apis/apps/v1/deployments"}
    assert metric("liststorm_watches_total", ctx.name, code="200") >= 3
    assert storm.ready()
    await storm.stop()
    await storm.stop()
    assert not storm.ready()


def test_collection_paths() -> None:
    """Core, known-group and explicit group/version/resource names map to cluster-wide paths."""
    assert collection_path("pods") == "/api/v1/pods"
    assert collection_path("leases") == "/apis/coordination.k8s.io/v1/leases"
    assert collection_path("example.com/v1/widgets") == "/apis/example.com/v1/widgets"
    assert collection_path("v1/nodes") == "/api/v1/nodes"
