"""Run an aiohttp application on a pod's IP and port, with a clean, idempotent stop."""

from __future__ import annotations

from aiohttp import web


class PodHttpServer:
    """One aiohttp ``Application`` listening on (host, port); port 0 picks a free port."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.app, self.host, self.port = app, host, port
        self._runner: web.AppRunner | None = None

    @property
    def listening(self) -> bool:
        """Whether the socket is open."""
        return self._runner is not None

    async def start(self) -> None:
        """Bind and serve; returns once listening."""
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Close the socket and every connection; idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
