"""The kubernetes plugin's view of the cluster: Services and Endpoints mirrored by informers.

Objects are converted to small typed records on arrival. The store is kept when the API server
becomes unreachable (CoreDNS behaviour); ``api_reachable`` says whether the last request worked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from lab.dns.informer import Informer


@dataclass(frozen=True)
class ServicePort:
    """One named port of a Service or Endpoints subset."""

    name: str
    port: int
    protocol: str


@dataclass(frozen=True)
class ServiceRecord:
    """What DNS needs from a Service."""

    namespace: str
    name: str
    cluster_ip: str
    type: str
    external_name: str
    ports: tuple[ServicePort, ...]

    @property
    def headless(self) -> bool:
        """A headless Service (``clusterIP: None``) resolves to its ready endpoints."""
        return self.cluster_ip in ("None", "") and self.type != "ExternalName"


@dataclass(frozen=True)
class EndpointAddress:
    """One endpoint address (with its optional hostname)."""

    ip: str
    hostname: str


@dataclass(frozen=True)
class EndpointsRecord:
    """What DNS needs from an Endpoints object: ready addresses and ports."""

    namespace: str
    name: str
    ready: tuple[EndpointAddress, ...]
    not_ready: tuple[EndpointAddress, ...]
    ports: tuple[ServicePort, ...]


def _ports(raw: list[dict[str, Any]] | None) -> tuple[ServicePort, ...]:
    return tuple(
        ServicePort(str(p.get("name", "")), int(p.get("port", 0)), str(p.get("protocol", "TCP")))
        for p in raw or []
    )


def service_from_json(obj: dict[str, Any]) -> ServiceRecord:
    """Convert a Service's JSON to a ``ServiceRecord``."""
    meta, spec = obj.get("metadata", {}), obj.get("spec", {})
    return ServiceRecord(
        namespace=str(meta.get("namespace", "default")),
        name=str(meta.get("name", "")),
        cluster_ip=str(spec.get("clusterIP") or ""),
        type=str(spec.get("type") or "ClusterIP"),
        external_name=str(spec.get("externalName") or ""),
        ports=_ports(spec.get("ports")),
    )


def _addresses(raw: list[dict[str, Any]] | None) -> tuple[EndpointAddress, ...]:
    return tuple(EndpointAddress(str(a.get("ip", "")), str(a.get("hostname") or "")) for a in raw or [])


def endpoints_from_json(obj: dict[str, Any]) -> EndpointsRecord:
    """Convert an Endpoints object's JSON to an ``EndpointsRecord`` (subsets flattened)."""
    meta = obj.get("metadata", {})
    ready: list[EndpointAddress] = []
    not_ready: list[EndpointAddress] = []
    ports: list[ServicePort] = []
    for subset in obj.get("subsets") or []:
        ready.extend(_addresses(subset.get("addresses")))
        not_ready.extend(_addresses(subset.get("notReadyAddresses")))
        ports.extend(p for p in _ports(subset.get("ports")) if p not in ports)
    return EndpointsRecord(
        namespace=str(meta.get("namespace", "default")),
        name=str(meta.get("name", "")),
        ready=tuple(ready),
        not_ready=tuple(not_ready),
        ports=tuple(ports),
    )


class ClusterStore:
    """Services and Endpoints of the whole cluster, kept in sync by list+watch."""

    def __init__(self, session: aiohttp.ClientSession, api_url: str) -> None:
        self.api_reachable = False
        self.services: Informer[ServiceRecord] = Informer(
            session, api_url, "/api/v1/services", service_from_json, on_reachable=self._set_reachable
        )
        self.endpoints: Informer[EndpointsRecord] = Informer(
            session, api_url, "/api/v1/endpoints", endpoints_from_json, on_reachable=self._set_reachable
        )
        self._listeners: list[Callable[[bool], None]] = []

    def on_reachable(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(bool)`` whenever reachability is observed."""
        self._listeners.append(callback)

    def _set_reachable(self, value: bool) -> None:
        self.api_reachable = value
        for callback in self._listeners:
            callback(value)

    @property
    def synced(self) -> bool:
        """Whether both collections have been listed at least once."""
        return self.services.synced.is_set() and self.endpoints.synced.is_set()

    async def wait_synced(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the first sync; returns whether it happened."""
        try:
            await asyncio.wait_for(
                asyncio.gather(self.services.synced.wait(), self.endpoints.synced.wait()), timeout
            )
        except TimeoutError:
            return False
        return True

    def start(self) -> None:
        """Start both informers."""
        self.services.start()
        self.endpoints.start()

    async def stop(self) -> None:
        """Stop both informers (the content stays)."""
        await self.services.stop()
        await self.endpoints.stop()

    def service(self, namespace: str, name: str) -> ServiceRecord | None:
        """The Service ``namespace/name`` or None."""
        return self.services.items.get(f"{namespace}/{name}")

    def endpoints_of(self, namespace: str, name: str) -> EndpointsRecord | None:
        """The Endpoints ``namespace/name`` or None."""
        return self.endpoints.items.get(f"{namespace}/{name}")
