"""The storm load generator: percentiles, both HTTP clients, stats, and stopping by tag."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tasks.faults.storm import StormConfig, percentile, run_storm
from tasks.faults.storm_process import find_storms, read_stats, start_storm, stop_storm
from tasks.faults.storm_protocol import ProtocolClient
from tests.tasks.helpers import poll


def test_percentile_nearest_rank() -> None:
    """Percentiles of sorted values; zero for none."""
    values = [float(i) for i in range(101)]
    assert percentile(values, 0.5) == 50.0 and percentile(values, 0.99) == 99.0 and percentile([], 0.5) == 0.0


async def _serve(handler: Any) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_get("/api/v1/pods", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


@pytest.mark.parametrize("chunked", [False, True])
def test_protocol_client_reads_whole_responses(chunked: bool) -> None:
    """The bare client parses Content-Length and chunked bodies, keeping the connection alive."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Authorization", ""))
        if not chunked:
            return web.json_response({"items": [1] * 500}, status=200 if len(seen) % 2 else 429)
        resp = web.StreamResponse(status=200)
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(3):
            await resp.write(b"x" * 5000)
        await resp.write_eof()
        return resp

    async def main() -> list[int | None]:
        runner, port = await _serve(handler)
        client = ProtocolClient(f"http://127.0.0.1:{port}", "/api/v1/pods", "tok", 2, None)
        try:
            return [await client.get() for _ in range(6)]
        finally:
            client.close()
            await runner.cleanup()

    statuses = asyncio.run(main())
    assert statuses == ([200] * 6 if chunked else [200, 429] * 3)
    assert seen == ["Bearer tok"] * 6


@pytest.mark.parametrize("client", ["aiohttp", "protocol"])
def test_run_storm_counts_codes_and_latencies(client: str, tmp_path: Path) -> None:
    """A short storm against a local server records sends, codes, 429s, percentiles and a baseline."""
    count = [0]

    async def handler(request: web.Request) -> web.Response:
        count[0] += 1
        return web.json_response({}, status=429 if count[0] % 3 == 0 else 200)

    async def main() -> dict[str, Any]:
        runner, port = await _serve(handler)
        cfg = StormConfig(url=f"http://127.0.0.1:{port}", rate=200, concurrency=4, ramp_up_s=0.2,
                          stats_path=str(tmp_path / "s.json"), client=client)  # type: ignore[arg-type]
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(1.0, stop.set)
        try:
            return (await run_storm(cfg, stop)).snapshot()
        finally:
            await runner.cleanup()

    snap = asyncio.run(main())
    assert snap["codes"].get("200", 0) > 50 and snap["errors"] == 0 and snap["client"] == client
    assert snap["throttled_429"] == snap["codes"]["429"] > 0
    assert snap["baseline_p50_ms"] > 0 and snap["p99_ms"] >= snap["p50_ms"] > 0
    assert read_stats(tmp_path / "s.json")["done"] is True  # type: ignore[index]


def test_storm_process_found_and_stopped_by_tag(tmp_path: Path) -> None:
    """A storm process is found through /proc by its tag and stopped, even without its Popen handle."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens: every request is a transport error
    cfg = StormConfig(url=f"http://127.0.0.1:{port}", rate=5, concurrency=1, ramp_up_s=0,
                      stats_path=str(tmp_path / "s.json"), max_seconds=60)
    proc = start_storm(cfg, "test/tag-1")
    try:
        poll(lambda: find_storms("test/tag-1"), timeout=10)
        poll(lambda: read_stats(tmp_path / "s.json"), timeout=15)
        assert stop_storm("test/tag-1") == [proc.pid]
        proc.wait(timeout=10)
        assert find_storms("test/tag-1") == [] and stop_storm("test/tag-1") == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


PARENT = """\
import sys
from tasks.faults.storm import StormConfig
from tasks.faults.storm_process import start_storm
proc = start_storm(StormConfig.model_validate_json(sys.argv[1]), sys.argv[2])
print(proc.pid, flush=True)
sys.stdin.read()  # until the test kills this process
"""


def test_storm_process_stops_within_seconds_of_its_runners_death(tmp_path: Path) -> None:
    """A storm whose starting process is SIGKILLed (a killed runner) stops by itself within seconds and writes its
    final stats, instead of running on for max_seconds."""
    import os
    import signal
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens: every request is a transport error
    cfg = StormConfig(url=f"http://127.0.0.1:{port}", rate=5, concurrency=1, ramp_up_s=0,
                      stats_path=str(tmp_path / "s.json"), max_seconds=600)
    runner = subprocess.Popen([sys.executable, "-c", PARENT, cfg.model_dump_json(), "test/orphan"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2])
    try:
        assert runner.stdout is not None
        storm = int(runner.stdout.readline())
        poll(lambda: read_stats(tmp_path / "s.json"), timeout=15)
        assert find_storms("test/orphan") == [storm]
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=10)
        poll(lambda: not find_storms("test/orphan"), timeout=10)
        assert read_stats(tmp_path / "s.json")["done"] is True  # type: ignore[index]
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(timeout=5)
        stop_storm("test/orphan")
