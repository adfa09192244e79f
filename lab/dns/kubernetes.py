"""The kubernetes plugin: answer ``<svc>.<ns>.svc.<zone>`` (and friends) from the ClusterStore.

A / CNAME / SRV for services (clusterIP, or the ready endpoints of a headless service),
``<host>.<svc>.<ns>.svc`` for headless endpoints, ``a-b-c-d.<ns>.pod`` with ``pods insecure``,
NXDOMAIN for any other name in the zone, SERVFAIL while the store has never synced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dnslib import CNAME, QTYPE, RCODE, RR, SOA, SRV, A, DNSLabel  # type: ignore[import-untyped]

from lab.dns.corefile import KubernetesConfig
from lab.dns.store import ClusterStore, EndpointsRecord, ServiceRecord


@dataclass
class Answer:
    """An answer before it becomes a packet: rcode plus answer and authority records."""

    rcode: int
    answers: list[RR] = field(default_factory=list)
    authority: list[RR] = field(default_factory=list)

    @property
    def denial(self) -> bool:
        """NXDOMAIN or NODATA (cached under the ``denial`` budget)."""
        return self.rcode == RCODE.NXDOMAIN or (self.rcode == RCODE.NOERROR and not self.answers)


def match_zone(qname: str, zones: tuple[str, ...]) -> str | None:
    """The longest zone in ``zones`` that contains ``qname`` (both lower-case, no trailing dot)."""
    best: str | None = None
    best_len = -1
    for zone in zones:
        inside = zone == "." or qname == zone or qname.endswith("." + zone)
        length = 0 if zone == "." else len(zone)
        if inside and length > best_len:
            best, best_len = zone, length
    return best


class KubernetesPlugin:
    """Answers for the cluster zones from a ``ClusterStore``."""

    def __init__(self, config: KubernetesConfig, store: ClusterStore) -> None:
        self.config = config
        self.store = store

    def handles(self, qname: str) -> bool:
        """Whether ``qname`` is in this plugin's zones and not left to fall through."""
        zone = match_zone(qname, self.config.zones)
        if zone is None:
            return False
        fall = self.config.fallthrough
        if zone.endswith("arpa") and fall is not None:
            return match_zone(qname, fall) is None
        return True

    def _soa(self, zone: str) -> RR:
        ttl = self.config.ttl
        rdata = SOA(f"ns.dns.{zone}.", f"hostmaster.{zone}.", (1, 7200, 1800, 86400, ttl))
        return RR(zone + ".", QTYPE.SOA, ttl=ttl, rdata=rdata)

    def answer(self, qname: str, qtype: int) -> Answer:
        """Answer one question; ``qname`` is lower-case without the trailing dot."""
        zone = match_zone(qname, self.config.zones) or "."
        if not self.store.synced:
            return Answer(RCODE.SERVFAIL)
        if qname == zone:
            if qtype == QTYPE.SOA:
                return Answer(RCODE.NOERROR, [self._soa(zone)])
            return Answer(RCODE.NOERROR, authority=[self._soa(zone)])
        labels = qname[: -len(zone) - 1].split(".") if zone != "." else qname.split(".")
        records = self._records(labels, qname)
        if records is None:
            return Answer(RCODE.NXDOMAIN, authority=[self._soa(zone)])
        wanted = [rr for rr in records if qtype in (rr.rtype, QTYPE.ANY) or rr.rtype == QTYPE.CNAME]
        if not wanted:
            return Answer(RCODE.NOERROR, authority=[self._soa(zone)])
        return Answer(RCODE.NOERROR, wanted)

    def _records(self, labels: list[str], qname: str) -> list[RR] | None:
        """All records at ``qname`` (None when the name does not exist)."""
        ttl, name = self.config.ttl, qname + "."
        if len(labels) == 3 and labels[2] == "pod" and self.config.pods != "disabled":
            parts = labels[0].split("-")
            if len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts):
                return [RR(name, QTYPE.A, ttl=ttl, rdata=A(".".join(parts)))]
            return None
        if len(labels) < 3 or labels[-1] != "svc":
            return None
        if len(labels) == 3:
            return self._service_records(labels[1], labels[0], name)
        if len(labels) == 4:
            return self._host_records(labels[2], labels[1], labels[0], name)
        if len(labels) == 5 and labels[0].startswith("_") and labels[1].startswith("_"):
            return self._srv_records(labels[3], labels[2], labels[0][1:], labels[1][1:], name)
        return None

    def _ready_ips(self, svc: ServiceRecord) -> list[str]:
        eps = self.store.endpoints_of(svc.namespace, svc.name)
        return [a.ip for a in eps.ready] if eps is not None else []

    def _service_records(self, ns: str, svc_name: str, name: str) -> list[RR] | None:
        svc, ttl = self.store.service(ns, svc_name), self.config.ttl
        if svc is None:
            return None
        if svc.type == "ExternalName":
            return [RR(name, QTYPE.CNAME, ttl=ttl, rdata=CNAME(svc.external_name.rstrip(".") + "."))]
        if not svc.headless:
            return [RR(name, QTYPE.A, ttl=ttl, rdata=A(svc.cluster_ip))]
        ips = self._ready_ips(svc)
        return [RR(name, QTYPE.A, ttl=ttl, rdata=A(ip)) for ip in ips] or None

    def _host_records(self, ns: str, svc_name: str, host: str, name: str) -> list[RR] | None:
        svc = self.store.service(ns, svc_name)
        eps = self.store.endpoints_of(ns, svc_name)
        if svc is None or not svc.headless or eps is None:
            return None
        for addr in eps.ready:
            if host in (addr.hostname, addr.ip.replace(".", "-")):
                return [RR(name, QTYPE.A, ttl=self.config.ttl, rdata=A(addr.ip))]
        return None

    def _srv_records(self, ns: str, svc_name: str, port: str, proto: str, name: str) -> list[RR] | None:
        svc, ttl = self.store.service(ns, svc_name), self.config.ttl
        if svc is None:
            return None
        out: list[RR] = []
        ports = svc.ports
        eps: EndpointsRecord | None = self.store.endpoints_of(ns, svc_name) if svc.headless else None
        if eps is not None:
            ports = eps.ports
        for p in ports:
            if p.name.lower() != port or p.protocol.lower() != proto:
                continue
            if eps is None:
                target = f"{svc_name}.{ns}.svc.{self._zone_of(name)}."
                out.append(RR(name, QTYPE.SRV, ttl=ttl, rdata=SRV(0, 100, p.port, DNSLabel(target))))
            for addr in eps.ready if eps is not None else ():
                host = addr.hostname or addr.ip.replace(".", "-")
                target = f"{host}.{svc_name}.{ns}.svc.{self._zone_of(name)}."
                out.append(RR(name, QTYPE.SRV, ttl=ttl, rdata=SRV(0, 100, p.port, DNSLabel(target))))
        return out or None

    def _zone_of(self, name: str) -> str:
        return match_zone(name.rstrip("."), self.config.zones) or "cluster.local"
