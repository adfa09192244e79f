"""``reconcile`` and ``stop``: the Prefect flows (and plain functions) that revert what runs left in the ledger.

``reconcile`` is for dead runs (a live campaign's faults are left to it); ``stop`` is the kill switch: it takes the
target's campaign lease from whoever holds it, so a live run stops at its keeper's next beat, and reverts every open
fault of every campaign on the target."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from prefect import flow

from blueprints.campaign import BlastRadius, Target
from flows.params import ReconcileParams, StopParams
from tasks.settings import Settings


def target_named(name: str) -> Target:
    """A Target for reconcile: just the cluster name ('lab' or a kubeconfig context)."""
    return Target.model_construct(
        cluster=name,
        kubeconfig=None,
        prometheus_url=None,
        namespaces=[],
        blast_radius=BlastRadius.model_construct(),
    )


def reconcile_target(
    target: str | dict[str, Any] | Target,
    settings: Settings,
    log: Callable[[str], None] = print,
    release_lease: bool | str = False,
    run_id: str | None = None,
) -> list[Any]:
    """Roll back every open ledger entry on one target (only ``run_id``'s if given); one result each.

    ``release_lease``: True drops whoever holds the campaign lease (the operator says it is dead); a run id
    drops it only if that run holds it. Otherwise the entries of a live lease holder (a campaign running right
    now) are left alone: reconcile is for dead runs.
    """
    from tasks.cluster import Cluster
    from tasks.reconcile import reconcile as reconcile_ledger
    from tasks.run.connect import fault_context_factory

    if isinstance(target, str):
        tgt = target_named(target)
    elif isinstance(target, dict):
        tgt = Target.model_validate(target)
    else:
        tgt = target
    cluster = Cluster.for_target(tgt, settings)
    try:
        from tasks.lease import lease_holder

        live: str | None = None
        if release_lease is not True:
            holder, stale = lease_holder(cluster, settings.ledger_namespace)
            live = holder if holder and not stale and holder != run_id else None
            if live:
                log(f"campaign {live!r} is running on this target: its faults are left to it")
        results = reconcile_ledger(
            cluster,
            settings.state_dir,
            settings.ledger_namespace,
            fault_context_factory(cluster, settings, log),
            log,
            run_id,
            live,
        )
        if release_lease:
            from tasks.lease import release_target_lease

            holder, _ = lease_holder(cluster, settings.ledger_namespace)
            wanted = holder if release_lease is True else release_lease
            if holder and holder == wanted and release_target_lease(cluster, holder, settings.ledger_namespace):
                log(f"released the campaign lock held by {holder!r}")
        return results
    finally:
        cluster.close()


@flow(name="reconcile", flow_run_name="reconcile {params.target}", log_prints=True)
def reconcile(params: ReconcileParams = ReconcileParams()) -> list[dict[str, Any]]:  # noqa: B008 - immutable default
    """Revert every unsettled ledger entry on the target (after a killed run)."""
    results = reconcile_target(params.target, Settings(), release_lease=params.release_lease)
    if params.release_lease:
        from flows.locking import release_limit

        release_limit(params.target)
    print(f"reconcile {params.target}: {len(results)} open entr(y/ies) handled")
    return [r.model_dump(mode="json") for r in results]


def stop_target(
    target: str,
    settings: Settings,
    log: Callable[[str], None] = print,
    hold_s: float = 0.0,
    settle_s: float | None = None,
) -> list[Any]:
    """The kill switch: take the target's campaign lease, revert every open fault of every campaign, one result each.

    A live run finds its lease taken at its keeper's next beat (``KEEPER_BEAT_S``) and stops, rolling back what it
    holds; ``settle_s`` later (default: a beat and 5 s) the ledger is read again, so a fault that run applied in the
    meantime is reverted too. With ``hold_s`` the lease is kept that long (new campaigns are refused until it goes
    stale); otherwise it is released at the end.
    """
    from tasks.cluster import Cluster
    from tasks.lease import KEEPER_BEAT_S, STOP_PREFIX, release_target_lease, take_target_lease
    from tasks.reconcile import reconcile as reconcile_ledger
    from tasks.run.connect import fault_context_factory

    holder = f"{STOP_PREFIX}-{uuid.uuid4().hex[:8]}"
    settle = KEEPER_BEAT_S + 5.0 if settle_s is None else settle_s
    cluster = Cluster.for_target(target_named(target), settings)
    try:
        ttl = max(hold_s, settle + 120.0)
        taken_from = take_target_lease(cluster, holder, ttl, settings.ledger_namespace)
        if taken_from:
            log(f"took the target from campaign {taken_from!r}: it stops within {KEEPER_BEAT_S:g} s")

        def revert() -> list[Any]:
            return reconcile_ledger(cluster, settings.state_dir, settings.ledger_namespace,
                                    fault_context_factory(cluster, settings, log), log, None, None)

        results = revert()
        if taken_from:
            time.sleep(settle)
            results += revert()
        if hold_s > 0:
            log(f"holding the target for {hold_s:g} s (lease {holder!r}): new campaigns are refused until then")
        else:
            release_target_lease(cluster, holder, settings.ledger_namespace)
        return results
    finally:
        cluster.close()


@flow(name="stop", flow_run_name="stop {params.target}", log_prints=True)
def stop(params: StopParams = StopParams()) -> list[dict[str, Any]]:  # noqa: B008 - immutable default
    """The kill switch: revert every open fault of every campaign on the target, stopping a live one."""
    from flows.locking import release_limit

    results = stop_target(params.target, Settings(), hold_s=params.hold_seconds)
    release_limit(params.target)
    failed = [r for r in results if r.outcome != "rolled-back"]
    print(f"stop {params.target}: {len(results)} open entr(y/ies) reverted, {len(failed)} failed")
    if failed:
        raise RuntimeError(f"stop {params.target}: {len(failed)} rollback(s) failed: "
                           + "; ".join(f"{r.fault_id}: {r.error}" for r in failed))
    return [r.model_dump(mode="json") for r in results]
