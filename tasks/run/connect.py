"""Wiring the runner to a real target: cluster, Prometheus, fault registry, ledger and probes.

:func:`connect` returns everything a run needs (``FaultContext`` and plain :class:`~tasks.run.ops.Ops`);
``tasks/steps.py`` wraps the same functions as Prefect tasks. Nothing here reads the environment: the
caller hands in a :class:`~tasks.settings.Settings`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from blueprints.campaign import Campaign
from blueprints.faults import Fault
from blueprints.probes import Probe
from blueprints.record import TargetInfo
from tasks.faults.base import Evidence, FaultBehaviour, FaultContext, Injection
from tasks.faults.selection import labels_of, name_of
from tasks.run.guardrails import ProbeVerdict
from tasks.run.ops import Ops
from tasks.settings import Settings

if TYPE_CHECKING:
    from tasks.agent_client import AgentClient
    from tasks.cluster import Cluster


def behaviour(registry: Mapping[str, Any], kind: str) -> FaultBehaviour[Any]:
    """The registered behaviour of a fault kind."""
    from tasks.errors import PermanentError

    try:
        return registry[kind]  # type: ignore[no-any-return]
    except KeyError:
        raise PermanentError(f"no behaviour registered for fault kind {kind!r}") from None


def plain_ops(registry: Mapping[str, Any], ledger: Any, evaluate: Callable[[Probe], ProbeVerdict]) -> Ops:
    """Ops calling the fault behaviours, the ledger and the probe evaluator directly."""

    def plan(spec: Fault, ctx: FaultContext, run_id: str, stage: str, fault_id: str) -> Injection:
        return behaviour(registry, spec.kind).plan(spec, ctx, run_id=run_id, stage=stage, fault_id=fault_id)

    def inject(inj: Injection, ctx: FaultContext) -> Injection:
        return behaviour(registry, inj.kind).inject(inj, ctx)

    def verify(inj: Injection, ctx: FaultContext) -> Evidence:
        return behaviour(registry, inj.kind).verify(inj, ctx)

    def rollback(inj: Injection, ctx: FaultContext) -> None:
        behaviour(registry, inj.kind).rollback(inj, ctx)

    def renew(inj: Injection, ctx: FaultContext) -> None:
        behaviour(registry, inj.kind).renew(inj, ctx)

    def record(inj: Injection) -> None:
        ledger.record(inj)

    def settle(inj: Injection, state: str, error: str) -> None:
        ledger.update(inj, state, error or None)

    return Ops(
        plan=plan,
        record=record,
        inject=inject,
        verify=verify,
        rollback=rollback,
        settle=settle,
        renew=renew,
        evaluate=evaluate,
    )


def probe_evaluator(probe_ctx: Any) -> Callable[[Probe], ProbeVerdict]:
    """Evaluate probes with ``tasks.probes.evaluate`` (raising ProbeError when not evaluable)."""
    from tasks.probes import evaluate

    def run(probe: Probe) -> ProbeVerdict:
        r = evaluate(probe, probe_ctx)
        return ProbeVerdict(
            ok=bool(r.ok), value=getattr(r, "value", None), detail=str(getattr(r, "message", ""))
        )

    return run


@dataclass
class Connected:
    """A run's live connections to its target."""

    cluster: Cluster
    ctx: FaultContext
    ops: Ops
    prometheus_url: str | None
    target: TargetInfo
    ledger: Any
    closers: list[Callable[[], object]] = field(default_factory=list)

    def close(self) -> None:
        """Release connections."""
        for c in reversed(self.closers):
            try:
                c()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass


def prometheus_for(campaign: Campaign, settings: Settings, cluster: Cluster) -> str | None:
    """The Prometheus to query: settings override, else the target's, else the lab's."""
    lab = cluster.lab
    return settings.prometheus_url or campaign.target.prometheus_url or (lab.prometheus if lab else None)


def agent_client(cluster: Cluster, settings: Settings) -> AgentClient | None:
    """The node-agent client for this cluster (None when it cannot be built: agent faults then fail to plan)."""
    from tasks.agent_client import AgentClient

    try:
        return AgentClient.for_cluster(cluster, settings)
    except Exception:  # noqa: BLE001 - only agent-held faults need it, and they say so when planned
        return None


def fault_context_factory(
    cluster: Cluster, settings: Settings, log: Callable[[str], None] = print
) -> Callable[[str], FaultContext]:
    """Build a FaultContext for any run id (what reconcile hands each rolled-back entry)."""
    prom = settings.prometheus_url or (cluster.lab.prometheus if cluster.lab else None)
    agents = agent_client(cluster, settings)

    def make(run_id: str) -> FaultContext:
        return FaultContext(
            cluster=cluster,
            run_id=run_id,
            prometheus_url=prom,
            settings=settings,
            agents=agents,
            log=log,
        )

    return make


def describe_topology(cluster: Cluster) -> tuple[dict[str, int], str]:
    """Node count, GPU node count and a short fingerprint of node names and roles (empty when unreadable)."""
    import hashlib

    try:
        nodes = cluster.list_nodes()
    except Exception:  # noqa: BLE001 - informational only; the report says the topology is unknown
        return {}, ""
    shape = sorted(
        (name_of(n), labels_of(n).get("nvidia.com/gpu.present", "false")) for n in nodes
    )
    gpus = sum(1 for _, g in shape if g == "true")
    digest = hashlib.sha256(repr(shape).encode()).hexdigest()[:12]
    return {"nodes": len(shape), "gpu_nodes": gpus}, digest


def connect(
    campaign: Campaign, settings: Settings, run_id: str, log: Callable[[str], None] = print, selection_seed: str = ""
) -> Connected:
    """Reach the campaign's target and build the run's context and operations (selectors pick with
    ``selection_seed``, else the run id)."""
    from tasks.cluster import Cluster
    from tasks.faults import REGISTRY
    from tasks.ledger import Ledger
    from tasks.probes import ProbeContext

    cluster = Cluster.for_target(campaign.target, settings)
    prom = prometheus_for(campaign, settings, cluster)
    ctx = FaultContext(
        cluster=cluster,
        run_id=run_id,
        prometheus_url=prom,
        blast_radius=campaign.target.blast_radius,
        selection_seed=selection_seed,
        log=log,
        settings=settings,
        agents=agent_client(cluster, settings),
    )
    ledger = Ledger(settings.state_dir, run_id, cluster, settings.ledger_namespace)
    probe_ctx = ProbeContext(cluster=cluster, prometheus_url=prom, lab=cluster.lab)
    ops = plain_ops(REGISTRY, ledger, probe_evaluator(probe_ctx))
    api = ""
    try:
        api = cluster.connection().url
    except Exception:  # noqa: BLE001 - informational only
        pass
    topology, fingerprint = describe_topology(cluster)
    info = TargetInfo(
        cluster=campaign.target.cluster,
        api_server=api,
        prometheus_url=prom or "",
        topology=topology,
        fingerprint=fingerprint,
    )
    return Connected(cluster, ctx, ops, prom, info, ledger, [cluster.close, ledger.close])
