"""``reconcile``: the Prefect flow (and plain function) that reverts whatever dead runs left in the ledger."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import flow

from blueprints.campaign import BlastRadius, Target
from flows.params import ReconcileParams
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
    from tasks.runner_connect import fault_context_factory

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
