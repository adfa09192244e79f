"""``ModelServerProgram``: the ``lab/model-server`` pod, a stand-in for an inference server.

``POST /v1/infer`` answers JSON after ``COMPUTE_MS`` of simulated compute (an asyncio sleep, so
one process can host many replicas); ``GET /healthz`` answers ``ok``.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from lab.pods import PodContext
from lab.workload import metrics
from lab.workload.httpserver import PodHttpServer
from lab.workload.settings import ModelServerSettings


class ModelServerProgram:
    """A fake-compute inference server on ``pod_ip:PORT`` (default 8080)."""

    def __init__(self) -> None:
        self._server: PodHttpServer | None = None
        self._settings = ModelServerSettings.from_env({})
        self._pod = ""

    @property
    def port(self) -> int:
        """The bound port (useful with ``PORT=0``)."""
        return self._server.port if self._server is not None else 0

    async def start(self, ctx: PodContext) -> None:
        """Listen on ``pod_ip:PORT``; returns once listening."""
        self._settings = ModelServerSettings.from_env(ctx.env)
        self._pod = ctx.name
        app = web.Application()
        app.router.add_post("/v1/infer", self._infer)
        app.router.add_get("/healthz", self._healthz)
        self._server = PodHttpServer(app, ctx.pod_ip, self._settings.port)
        await self._server.start()

    async def _infer(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            prompt = json.loads(body).get("prompt", "") if body else ""
        except (ValueError, AttributeError):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        await asyncio.sleep(self._settings.compute_ms / 1000.0)
        metrics.MODEL_REQUESTS.labels(self._pod).inc()
        return web.json_response(
            {"model": self._settings.model_name, "pod": self._pod, "output": f"echo: {str(prompt)[:64]}"}
        )

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def ready(self) -> bool:
        """Ready while listening."""
        return self._server is not None and self._server.listening

    async def stop(self) -> None:
        """Close the listener and its connections; idempotent."""
        if self._server is not None:
            await self._server.stop()
