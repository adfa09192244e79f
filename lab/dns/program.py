"""``CoreDnsProgram``: the ``lab/coredns`` pod: informers, Corefile from a ConfigMap, listeners.

Start-up mirrors CoreDNS: list Services/Endpoints and wait up to ``STARTUP_SYNC_TIMEOUT`` (5 s);
if the API server cannot be reached, serve anyway (cluster names get SERVFAIL) and stay unready
until a sync happens. A synced replica keeps answering from its store when the API goes away.
With a ``forward`` to loopback upstreams and no ``kubernetes`` plugin the same program is a
node-local DNS cache (``kube-system/node-local-dns``). The Corefile comes from the ConfigMap (``COREFILE_CONFIGMAP``, key ``Corefile``), else env
``COREFILE``, else kubeadm's default; with the ``reload`` plugin, ConfigMap edits apply at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp

from lab.dns import metrics
from lab.dns.corefile import KUBEADM_COREFILE, Corefile, parse_corefile
from lab.dns.errors import CorefileError
from lab.dns.informer import Informer
from lab.dns.server import DnsEngine
from lab.dns.settings import CoreDnsSettings
from lab.dns.store import ClusterStore
from lab.dns.transport import DnsListener
from lab.pods import PodContext

log = logging.getLogger(__name__)


class CoreDnsProgram:
    """A CoreDNS-like DNS server pod (UDP and TCP on ``pod_ip:PORT``)."""

    def __init__(self, startup_sync_timeout: float | None = None) -> None:
        self._startup_timeout = startup_sync_timeout
        self._pod = ""
        self._session: aiohttp.ClientSession | None = None
        self.store: ClusterStore | None = None
        self._config: Informer[str | None] | None = None
        self._listener: DnsListener | None = None
        self.engine: DnsEngine | None = None
        self._retired: list[DnsEngine] = []
        self._text: str | None = None
        self._from_configmap = False
        self._stopped = False
        self._settings = CoreDnsSettings.from_env({})

    @property
    def pod(self) -> str:
        """The pod name (the ``pod`` label of this replica's metrics)."""
        return self._pod

    @property
    def port(self) -> int:
        """The bound port (useful with ``PORT=0``)."""
        return self._listener.port if self._listener is not None else 0

    async def start(self, ctx: PodContext) -> None:
        """Sync (bounded), load the Corefile, bind UDP+TCP; returns once listening."""
        try:
            await self._start(ctx)
        except BaseException:
            await self.stop()
            raise

    async def _start(self, ctx: PodContext) -> None:
        settings = CoreDnsSettings.from_env(ctx.env)
        timeout = (
            self._startup_timeout if self._startup_timeout is not None else settings.startup_sync_timeout
        )
        self._pod = ctx.name
        self._settings = settings
        metrics.API_REACHABLE.labels(self._pod).set(0)
        self._session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {ctx.api_token}"})
        self.store = ClusterStore(self._session, ctx.api_url)
        self.store.on_reachable(lambda up: metrics.API_REACHABLE.labels(self._pod).set(1 if up else 0))
        ns, name = settings.configmap
        self._config = Informer(
            self._session,
            ctx.api_url,
            f"/api/v1/namespaces/{ns}/configmaps",
            self._corefile_of,
            field_selector=f"metadata.name={name}",
            accept=lambda obj: bool(obj.get("metadata", {}).get("name") == name),
            on_change=self._config_changed,
        )
        self.store.start()
        self._config.start()
        deadline = time.monotonic() + timeout
        if not await self.store.wait_synced(timeout):
            log.warning("coredns %s: starting with unsynced Kubernetes API", self._pod)
        try:
            await asyncio.wait_for(self._config.synced.wait(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            pass
        self._load(self._current_text(), initial=True)
        assert self.engine is not None
        self._listener = DnsListener(ctx.pod_ip, settings.port, lambda: self._engine())
        await self._listener.start()

    def _corefile_of(self, obj: dict[str, Any]) -> str | None:
        data = obj.get("data") or {}
        value = data.get(self._settings.corefile_key)
        return str(value) if value is not None else None

    def _engine(self) -> DnsEngine:
        assert self.engine is not None
        return self.engine

    def _current_text(self) -> str:
        if self._config is not None:
            for text in self._config.items.values():
                if text is not None:
                    self._from_configmap = True
                    return text
        self._from_configmap = False
        return self._settings.corefile or KUBEADM_COREFILE

    def _load(self, text: str, initial: bool = False) -> bool:
        try:
            corefile: Corefile = parse_corefile(text)
        except CorefileError as exc:
            metrics.RELOADS.labels(self._pod, "failed").inc()
            if initial:
                raise
            log.error("coredns %s: Corefile rejected, keeping the previous one: %s", self._pod, exc)
            return False
        for plugin in corefile.unknown_plugins:
            metrics.UNKNOWN_PLUGINS.labels(self._pod, plugin).inc()
            log.warning("coredns %s: ignoring unknown plugin %r", self._pod, plugin)
        assert self.store is not None
        if self.engine is not None:
            self._retired.append(self.engine)
        self.engine = DnsEngine(corefile, self.store, self._pod)
        self._text = text
        if not initial:
            metrics.RELOADS.labels(self._pod, "success").inc()
        return True

    def _config_changed(self) -> None:
        """A ConfigMap event: reload when the text changed and ``reload`` is enabled."""
        if self.engine is None or self._stopped:
            return
        was_from_configmap = self._from_configmap
        text = self._current_text()
        if text == self._text:
            return
        if was_from_configmap and not self.engine.corefile.reload:
            log.info("coredns %s: Corefile changed but the reload plugin is off", self._pod)
            return
        self._load(text)

    @property
    def corefile(self) -> Corefile | None:
        """The Corefile in force."""
        return self.engine.corefile if self.engine is not None else None

    def ready(self) -> bool:
        """Ready once listening and, if a block uses ``kubernetes``, its store has synced (never before).

        A pure forwarding cache (NodeLocal DNSCache's Corefile) is ready as soon as it listens.
        """
        if self._listener is None or self._stopped or self.store is None or self.engine is None:
            return False
        return self.store.synced or not self.engine.corefile.uses_kubernetes

    async def stop(self) -> None:
        """Close sockets, informers and the HTTP session; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._listener is not None:
            await self._listener.stop()
        for engine in [*self._retired, *([self.engine] if self.engine is not None else [])]:
            await engine.close()
        if self._config is not None:
            await self._config.stop()
        if self.store is not None:
            await self.store.stop()
        if self._session is not None:
            await self._session.close()
        if self._pod:
            try:
                metrics.API_REACHABLE.remove(self._pod)
            except KeyError:
                pass
