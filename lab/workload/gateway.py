"""``GatewayProgram``: the ``lab/gateway`` pod, resolving the model service on every request.

Each ``POST /v1/infer`` resolves ``MODEL_SERVICE`` through ``DNS_SERVER`` (cached client-side for
the answer's TTL), picks an address round-robin and forwards to
``http://<ip>:<MODEL_PORT>/v1/infer`` within ``UPSTREAM_TIMEOUT``. Failures are counted by cause:
``dns`` (503), ``upstream`` (502: refused, reset or a 5xx), ``timeout`` (504).
"""

from __future__ import annotations

import itertools
import time

import aiohttp
from aiohttp import web

from lab.pods import PodContext
from lab.workload import metrics
from lab.workload.errors import DnsLookupError
from lab.workload.httpserver import PodHttpServer
from lab.workload.resolver import CachingResolver
from lab.workload.settings import GatewaySettings


class GatewayProgram:
    """An HTTP front that finds model servers through cluster DNS."""

    def __init__(self) -> None:
        self._server: PodHttpServer | None = None
        self._session: aiohttp.ClientSession | None = None
        self._resolver: CachingResolver | None = None
        self._settings = GatewaySettings.from_env({})
        self._pod = ""
        self._rr = itertools.count()

    @property
    def pod(self) -> str:
        """The pod name (the ``pod`` label of this gateway's metrics)."""
        return self._pod

    @property
    def port(self) -> int:
        """The bound port (useful with ``PORT=0``)."""
        return self._server.port if self._server is not None else 0

    async def start(self, ctx: PodContext) -> None:
        """Listen on ``pod_ip:PORT``; returns once listening."""
        self._settings = s = GatewaySettings.from_env(ctx.env)
        self._pod = ctx.name
        self._resolver = CachingResolver(s.dns_address, s.dns_timeout, s.client_ttl_cap, attempts=s.dns_attempts)
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        app = web.Application()
        app.router.add_post("/v1/infer", self._infer)
        app.router.add_get("/healthz", self._healthz)
        self._server = PodHttpServer(app, ctx.pod_ip, s.port)
        try:
            await self._server.start()
        except BaseException:
            await self.stop()
            raise

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _done(self, started: float, code: int, cause: str) -> None:
        metrics.GATEWAY_REQUESTS.labels(self._pod, str(code), cause).inc()
        metrics.GATEWAY_DURATION.labels(self._pod).observe(time.perf_counter() - started)

    async def _infer(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        assert self._resolver is not None and self._session is not None
        body = await request.read()
        try:
            ips, result = await self._resolver.resolve(self._settings.model_service)
        except DnsLookupError as exc:
            metrics.GATEWAY_DNS.labels(self._pod, exc.result).inc()
            self._done(started, 503, "dns")
            return web.json_response({"error": str(exc), "cause": "dns"}, status=503)
        metrics.GATEWAY_DNS.labels(self._pod, result).inc()
        ip = ips[next(self._rr) % len(ips)]
        url = f"http://{ip}:{self._settings.model_port}/v1/infer"
        timeout = aiohttp.ClientTimeout(total=self._settings.upstream_timeout)
        try:
            async with self._session.post(
                url, data=body, headers={"Content-Type": "application/json"}, timeout=timeout
            ) as resp:
                payload = await resp.read()
                status = resp.status
        except TimeoutError:
            self._done(started, 504, "timeout")
            return web.json_response({"error": f"{url} timed out", "cause": "timeout"}, status=504)
        except aiohttp.ClientError as exc:
            self._done(started, 502, "upstream")
            return web.json_response({"error": f"{url}: {exc}", "cause": "upstream"}, status=502)
        if status >= 500:
            self._done(started, 502, "upstream")
            return web.json_response({"error": f"{url} answered {status}", "cause": "upstream"}, status=502)
        self._done(started, status, "none")
        return web.Response(body=payload, status=status, content_type="application/json")

    def ready(self) -> bool:
        """Ready while listening (DNS health is not part of readiness, as in most gateways)."""
        return self._server is not None and self._server.listening

    async def stop(self) -> None:
        """Close the listener and the upstream connection pool; idempotent."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop()
        session, self._session = self._session, None
        if session is not None:
            await session.close()
