"""coredns-outage: break cluster DNS by scaling CoreDNS to zero, blocking it, or editing its Corefile.

Blast radius: every pod that resolves names through kube-dns (the whole cluster's service discovery);
it is counted as the CoreDNS pods touched. Undo, from the ledger alone:
- ``scale-to-zero``: the replica count read at plan time is stored; rollback scales back to exactly it.
- ``block``: a NetworkPolicy named ``gameday-dns-block-<run>-<fault>`` denies ingress to the kube-dns
  pods (53/UDP+TCP); rollback deletes exactly that policy. Only a cluster that enforces NetworkPolicies
  is affected; verify says so when DNS still answers.
- ``corefile``: the original Corefile text is stored; rollback writes it back byte for byte.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, RootModel

from blueprints.faults import CorednsOutage
from tasks.cluster_ops import Manifest
from tasks.errors import NotFound
from tasks.faults.base import Change, Evidence, FaultContext, Injection, Undo, undo_of
from tasks.faults.corefile import apply_edit, has_edit
from tasks.faults.selection import MANAGED_BY, check_blast_radius, k8s_name, name_of, namespace_of, now
from tasks.probes.dns import DnsAnswer, query

COREFILE_KEY = "Corefile"
RESTORED_ANSWERS = 6
"""Answers in a row as before the fault that make a rollback's DNS restored: the Service spreads queries over every
CoreDNS replica, and each reloads its Corefile on its own."""


class DnsBaseline(Undo):
    """How DNS answered the check name at plan time, before the fault."""

    server: str
    qname: str
    rcode: str
    elapsed_s: float
    broken: bool
    """It already looked as the fault would make it look (then verify has no evidence)."""


class _Outage(Undo):
    """What every mode records."""

    namespace: str
    qname: str | None = None
    """The name verify asks for, when one was given (entries of older versions); else see :func:`check_name`."""
    dns_baseline: DnsBaseline | None = None
    """Set when a DNS server was known at plan time."""


class ScaleToZeroUndo(_Outage):
    """scale-to-zero: the replica count read at plan time."""

    mode: Literal["scale-to-zero"]
    deployment: str
    replicas: int


class BlockUndo(_Outage):
    """block: the NetworkPolicy this fault creates (and rollback deletes)."""

    mode: Literal["block"]
    policy: str
    pod_labels: dict[str, str]


class CorefileUndo(_Outage):
    """corefile: the Corefile before and after the edit, and what the edit makes CoreDNS do."""

    mode: Literal["corefile"]
    configmap: str
    original: str
    edited: str
    tag: str
    """``<run>/<fault>``, the marker of this fault's edit in the Corefile."""
    zones: list[str]
    action: Literal["servfail", "delay", "drop"]
    every: int
    delay_s: float


OutageUndo = ScaleToZeroUndo | BlockUndo | CorefileUndo


class CorednsOutageUndo(RootModel[Annotated[OutageUndo, Field(discriminator="mode")]]):
    """scale-to-zero: scaled back to the replica count read at plan time; block: exactly its NetworkPolicy is
    deleted; corefile: the original Corefile is written back byte for byte

    One model per mode, told apart by ``mode``.
    """


def check_name(undo: OutageUndo) -> str:
    """The name verify asks for: kube-dns's own Service name, or a name inside the first edited zone."""
    if undo.qname:
        return undo.qname
    if isinstance(undo, CorefileUndo):
        return f"gameday-check.{undo.zones[0].rstrip('.')}"
    return f"kube-dns.{undo.namespace}.svc.cluster.local"


def _delay_s(undo: OutageUndo) -> float:
    return undo.delay_s if isinstance(undo, CorefileUndo) else 0.0


def dns_server_for(ctx: FaultContext) -> str | None:
    """The DNS server verify should ask: the context's, else the lab's kube-dns address."""
    return ctx.dns_server or (ctx.cluster.lab.dns if ctx.cluster.lab else None)


def block_policy(name: str, namespace: str, pod_labels: dict[str, str]) -> Manifest:
    """A NetworkPolicy that admits nothing to the kube-dns pods on port 53 (no ingress rule = deny all)."""
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "spec": {"podSelector": {"matchLabels": dict(pod_labels)}, "policyTypes": ["Ingress"], "ingress": []},
    }


class CorednsOutageFault:
    """Behaviour of the coredns-outage kind."""

    kind: ClassVar[str] = "coredns-outage"
    blast_radius: ClassVar[str] = (
        "every pod that resolves names through kube-dns (the whole cluster's service discovery); counted as "
        "the CoreDNS pods touched"
    )
    undo: ClassVar[type[BaseModel]] = CorednsOutageUndo
    leased: ClassVar[bool] = False

    def plan(self, spec: CorednsOutage, ctx: FaultContext, *, run_id: str, stage: str, fault_id: str) -> Injection:
        """Read the CoreDNS state to undo to, and check the blast radius (CoreDNS pods touched)."""
        c = ctx.cluster
        pods = c.list_pods([spec.namespace], spec.pod_labels)
        check_blast_radius(ctx, f"coredns-outage/{spec.mode}", pods=len(pods))
        ns = spec.namespace
        undo: OutageUndo
        changes: list[Change] = []
        if spec.mode == "scale-to-zero":
            replicas = int(c.read_deployment(ns, spec.deployment).spec.replicas or 0)
            undo = ScaleToZeroUndo(mode=spec.mode, namespace=ns, deployment=spec.deployment, replicas=replicas)
            changes.append(Change(action="scale", object=f"apps/v1 Deployment {ns}/{spec.deployment}",
                                  detail=f"replicas {replicas} -> 0", undo=f"scale back to {replicas}"))
        elif spec.mode == "block":
            name = k8s_name("gameday-dns-block", run_id, fault_id)
            undo = BlockUndo(mode=spec.mode, namespace=ns, policy=name, pod_labels=dict(spec.pod_labels))
            changes.append(Change(action="create", object=f"networking.k8s.io/v1 NetworkPolicy {ns}/{name}",
                                  detail=f"deny ingress to pods {spec.pod_labels} (53/UDP+TCP)",
                                  undo="delete exactly this policy"))
        else:
            assert spec.corefile is not None  # the spec validator guarantees it
            data = c.read_configmap(ns, spec.configmap).data or {}
            if COREFILE_KEY not in data:
                raise NotFound(f"configmap {ns}/{spec.configmap} has no {COREFILE_KEY} key")
            original = data[COREFILE_KEY]
            tag = f"{run_id}/{fault_id}"
            edited = apply_edit(original, spec.corefile, tag)
            edit = spec.corefile
            undo = CorefileUndo(mode=spec.mode, namespace=ns, configmap=spec.configmap, original=original,
                                edited=edited, tag=tag, zones=list(edit.zones), action=edit.action, every=edit.every,
                                delay_s=edit.delay.total_seconds())
            changes.append(Change(action="patch", object=f"v1 ConfigMap {ns}/{spec.configmap}",
                                  detail=f"{spec.corefile.action} for zones {spec.corefile.zones}",
                                  undo="restore the original Corefile text byte for byte"))
        server = dns_server_for(ctx)
        if server:
            base = query(server, check_name(undo), timeout=max(1.0, _delay_s(undo) + 1.0))
            baseline = DnsBaseline(server=server, qname=check_name(undo), rcode=base.rcode,
                                   elapsed_s=round(base.elapsed_s, 4), broken=self._broken(undo, base))
            undo = undo.model_copy(update={"dns_baseline": baseline})
        return Injection(run_id=run_id, stage=stage, fault_id=fault_id, kind=self.kind,
                         spec=spec.model_dump(mode="json"), summary=f"CoreDNS outage ({spec.mode}) in {ns}",
                         targets=[f"pod/{namespace_of(p)}/{name_of(p)}" for p in pods],
                         changes=changes, undo=undo.model_dump(mode="json"), planned_at=now())

    def inject(self, injection: Injection, ctx: FaultContext) -> Injection:
        """Apply the change named in the plan."""
        u, c = undo_of(injection, CorednsOutageUndo).root, ctx.cluster
        if isinstance(u, ScaleToZeroUndo):
            c.scale_deployment(u.namespace, u.deployment, 0)
        elif isinstance(u, BlockUndo):
            c.create_network_policy(u.namespace, block_policy(u.policy, u.namespace, u.pod_labels))
        else:
            c.patch_configmap_data(u.namespace, u.configmap, {COREFILE_KEY: u.edited})
        return injection

    def _api_state(self, u: OutageUndo, ctx: FaultContext) -> tuple[bool, dict[str, Any]]:
        """(the change is in the API, what was read): ``details`` of the Evidence."""
        c = ctx.cluster
        if isinstance(u, ScaleToZeroUndo):
            dep = c.read_deployment(u.namespace, u.deployment)
            ready = int((dep.status.ready_replicas if dep.status else 0) or 0)
            return int(dep.spec.replicas or 0) == 0 and ready == 0, {"replicas": dep.spec.replicas,
                                                                   "ready_replicas": ready}
        if isinstance(u, BlockUndo):
            try:
                c.read_network_policy(u.namespace, u.policy)
                return True, {"policy": u.policy, "exists": True}
            except NotFound:
                return False, {"policy": u.policy, "exists": False}
        text = (c.read_configmap(u.namespace, u.configmap).data or {}).get(COREFILE_KEY, "")
        return has_edit(text, u.tag), {"corefile_edited": has_edit(text, u.tag)}

    def _broken(self, u: OutageUndo, a: DnsAnswer) -> bool:
        if not isinstance(u, CorefileUndo):
            return a.rcode != "NOERROR"
        if u.action == "servfail":
            return a.rcode == "SERVFAIL"
        if u.action == "drop":
            return a.rcode == "TIMEOUT"
        return bool(a.elapsed_s >= 0.8 * u.delay_s)

    def _dns_broken(self, u: OutageUndo, server: str) -> tuple[bool, DnsAnswer, str]:
        qname = check_name(u)
        timeout = max(1.0, _delay_s(u) + 1.0)
        every = u.every if isinstance(u, CorefileUndo) else 1
        answers = [query(server, qname, timeout=timeout) for _ in range(every)]
        broken = [a for a in answers if self._broken(u, a)]
        return bool(broken), (broken or answers)[-1], qname

    def verify(self, injection: Injection, ctx: FaultContext) -> Evidence:
        """API state shows the change and, where a DNS server is known, real queries fail (polled briefly)."""
        u = undo_of(injection, CorednsOutageUndo).root
        deadline = time.monotonic() + ctx.timeouts.verify_s
        server = dns_server_for(ctx)
        while True:
            api_ok, details = self._api_state(u, ctx)
            dns_ok, summary = True, "no DNS server known for this target: API state only"
            if server and api_ok:
                dns_ok, ans, qname = self._dns_broken(u, server)
                details.update(dns_server=server, qname=qname, rcode=ans.rcode,
                               elapsed_ms=round(ans.elapsed_s * 1000, 1))
                summary = f"{qname} @{server}: {ans.rcode} in {ans.elapsed_s * 1000:.0f} ms"
            if (api_ok and dns_ok) or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        baseline = u.dns_baseline
        if baseline is not None and baseline.broken:
            dns_ok = False
            summary += f" — but DNS already looked like this before the fault ({baseline.rcode}): no evidence"
        elif api_ok and not dns_ok and isinstance(u, BlockUndo):
            summary += " — the policy exists but DNS still answers: this cluster does not enforce NetworkPolicies"
        details["dns_baseline"] = baseline.model_dump(mode="json") if baseline is not None else {}
        return Evidence(landed=api_ok and dns_ok, summary=f"{u.mode}: {summary}", details=details)

    def rollback(self, injection: Injection, ctx: FaultContext) -> None:
        """Restore exactly what the plan recorded; objects already restored or gone are fine."""
        u, c = undo_of(injection, CorednsOutageUndo).root, ctx.cluster
        try:
            if isinstance(u, ScaleToZeroUndo):
                c.scale_deployment(u.namespace, u.deployment, u.replicas)
            elif isinstance(u, BlockUndo):
                c.delete_network_policy(u.namespace, u.policy)
            else:
                current = (c.read_configmap(u.namespace, u.configmap).data or {}).get(COREFILE_KEY)
                if current != u.original:
                    c.patch_configmap_data(u.namespace, u.configmap, {COREFILE_KEY: u.original})
        except NotFound as e:
            ctx.log(f"coredns-outage rollback: {e} (already gone; nothing to restore)")
        if isinstance(u, CorefileUndo | BlockUndo):
            self._await_dns_restored(u, ctx)

    def _await_dns_restored(self, u: OutageUndo, ctx: FaultContext) -> None:
        """After a Corefile or policy rollback, wait (bounded) until DNS answers as it did before the fault, several
        times in a row: a real CoreDNS reads its ConfigMap through a volume and its reload plugin, seconds after the
        API has it."""
        baseline, server = u.dns_baseline, dns_server_for(ctx)
        if not server or baseline is None or baseline.broken:
            return
        deadline = time.monotonic() + ctx.timeouts.restore_s
        healthy = 0
        while True:
            broken, answer, qname = self._dns_broken(u, server)
            healthy = 0 if broken else healthy + 1
            if healthy >= RESTORED_ANSWERS:
                return
            if time.monotonic() > deadline:
                ctx.log(f"coredns-outage rollback: {u.mode} restored in the API, but {qname} @{server} still "
                        f"answers {answer.rcode}")
                return
            time.sleep(0.3)

    def renew(self, injection: Injection, ctx: FaultContext) -> None:
        """Nothing to renew: cluster state persists until rollback."""
