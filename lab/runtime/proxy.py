"""A kube-proxy-like service front for Services whose clusterIP lies in 127.0.0.0/8.

For each such Service port it listens on clusterIP:port (UDP or TCP, per the port's protocol) and
forwards to the ready endpoints of the Service's Endpoints object, round robin, skipping endpoints
whose pod a NetworkPolicy isolates for that port (``lab/runtime/netpol.py``: source-agnostic ingress
only). With no ready (admitted) endpoint the listener is closed, so TCP connections are refused and UDP datagrams go unanswered:
what a client sees in a real cluster when a Service has no endpoints. Like kube-proxy it works
from the Endpoints it last saw, so it keeps forwarding while the API server is unreachable.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

from lab.runtime.cluster import Cluster
from lab.runtime.informer import key_of
from lab.runtime.metrics import PROXY_DROPPED, PROXY_FORWARDED
from lab.runtime.netpol import admits
from lab.runtime.proxy_io import Backends, TcpFront, UdpFront

log = logging.getLogger(__name__)
Obj = dict[str, Any]
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
PortKey = tuple[str, int, str]  # (clusterIP, port, protocol)


def proxied_ports(service: Obj) -> list[tuple[PortKey, str]]:
    """(listen key, service port name) for each port of a Service the proxy fronts."""
    spec = service.get("spec") or {}
    ip = spec.get("clusterIP")
    if not ip or ip == "None":
        return []
    try:
        if ipaddress.ip_address(ip) not in LOOPBACK:
            return []
    except ValueError:
        return []
    return [((ip, int(p["port"]), p.get("protocol", "TCP")), p.get("name", "")) for p in spec.get("ports") or []]


def ready_backends(
    endpoints: Obj | None, port_name: str, protocol: str, admitted: Any = None
) -> list[tuple[str, int]]:
    """The (ip, port) pairs of ready endpoints serving a service port.

    ``admitted(address, port, port_name, protocol)``, when given, filters out endpoints that a
    NetworkPolicy isolates.
    """
    backends = []
    for subset in (endpoints or {}).get("subsets") or []:
        ports = [p for p in subset.get("ports") or [] if p.get("protocol", "TCP") == protocol]
        match = [p for p in ports if p.get("name", "") == port_name] or (ports if len(ports) == 1 else [])
        for port in match:
            for address in subset.get("addresses") or []:
                if admitted is None or admitted(address, int(port["port"]), port.get("name", ""), protocol):
                    backends.append((address["ip"], int(port["port"])))
    return sorted(backends)


class ServiceProxy:
    """Opens and closes listeners as Services and Endpoints change."""

    def __init__(self, cluster: Cluster, reachable: list[IpNetwork] | None = None) -> None:
        self.cluster = cluster
        self.reachable = reachable if reachable is not None else [LOOPBACK]
        self.backends: dict[PortKey, Backends] = {}
        self.fronts: dict[PortKey, TcpFront | UdpFront] = {}
        self._dirty = asyncio.Event()
        cluster.services.add_handler(lambda e, o: self._dirty.set())
        cluster.endpoints.add_handler(lambda e, o: self._dirty.set())
        cluster.networkpolicies.add_handler(lambda e, o: self._dirty.set())

    def desired(self) -> dict[PortKey, list[tuple[str, int]]]:
        """Every fronted port and its ready backends, from the cached Services and Endpoints."""
        want: dict[PortKey, list[tuple[str, int]]] = {}
        policies = self.cluster.networkpolicies.items()
        for svc in self.cluster.services.items():
            ns, name = key_of(svc)
            eps = self.cluster.endpoints.get(ns, name)
            for pkey, pname in proxied_ports(svc):
                found = ready_backends(eps, pname, pkey[2], self._admitted(policies) if policies else None)
                want[pkey] = [b for b in found if self._reachable(b[0])]
        return want

    def _reachable(self, ip: str) -> bool:
        """Whether an endpoint's address is one of the lab's own (never forward to kwok's 10.244.x pod IPs or
        any other address off this machine)."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in net for net in self.reachable)

    def _admitted(self, policies: list[Obj]) -> Any:
        """An endpoint filter: the endpoint's pod admits unknown-source ingress on that port."""
        def check(address: Obj, port: int, port_name: str, protocol: str) -> bool:
            ref = address.get("targetRef") or {}
            pod = self.cluster.pods.get(ref.get("namespace", ""), ref.get("name", "")) if ref else None
            return pod is None or admits(policies, pod, port, port_name, protocol)
        return check

    async def sync(self) -> None:
        """Open listeners for ports with backends, close the rest."""
        want = self.desired()
        for pkey in list(self.fronts):
            if not want.get(pkey):
                front = self.fronts.pop(pkey)
                front.close()
                log.info("proxy: %s:%s/%s has no ready endpoints; closed", *pkey)
        for pkey, items in want.items():
            self.backends.setdefault(pkey, Backends()).set(items)
            if items and pkey not in self.fronts:
                try:
                    self.fronts[pkey] = await self._open(pkey)
                    log.info("proxy: serving %s:%s/%s", *pkey)
                except OSError as err:
                    log.warning("proxy: cannot listen on %s:%s/%s: %s", *pkey, err)

    async def _open(self, pkey: PortKey) -> TcpFront | UdpFront:
        backends = self.backends[pkey]
        ip, port, proto = pkey
        if proto == "UDP":
            front: TcpFront | UdpFront = UdpFront(ip, port, backends, PROXY_FORWARDED.labels("UDP"),
                                                 PROXY_DROPPED.labels("UDP"))
        else:
            front = TcpFront(ip, port, backends, PROXY_FORWARDED.labels("TCP"))
        await front.open()
        return front

    async def run(self) -> None:
        """Sync on every Service/Endpoints change forever."""
        try:
            while True:
                await self._dirty.wait()
                self._dirty.clear()
                await self.sync()
                await asyncio.sleep(0.01)
        finally:
            self.close()

    def close(self) -> None:
        """Close every listener."""
        for front in self.fronts.values():
            front.close()
        self.fronts.clear()
