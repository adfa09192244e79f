"""``reconcile``: the Prefect flow (and plain function) that reverts whatever dead runs left in the ledger."""

from __future__ import annotations

from typing import Any

from prefect import flow

from blueprints.campaign import BlastRadius, Target
from flows.params import ReconcileParams
from tasks.settings import Settings


def target_named(name: str) -> Target:
    """A Target for reconcile: just the cluster name ('lab' or a kubeconfig context)."""
    return Target.model_construct(
        cluster=name, kubeconfig=None, prometheus_url=None, namespaces=[], blast_radius=BlastRadius.model_construct()
    )


def reconcile_target(target: str | dict[str, Any] | Target, settings: Settings, run_id: str | None = None,
                     blueprint: str | None = None) -> Any:
    """Reconcile one target (optionally one run's entries only); returns the ledger's report."""
    from tasks.cluster import Cluster
    from tasks.ledger import reconcile as reconcile_ledger

    if isinstance(target, str):
        tgt = target_named(target)
    elif isinstance(target, dict):
        tgt = Target.model_validate(target)
    else:
        tgt = target
    cluster = Cluster.for_target(tgt, settings)
    try:
        return reconcile_ledger(cluster, settings.state_dir, run_id=run_id)
    finally:
        cluster.close()


@flow(name="reconcile", flow_run_name="reconcile {params.target}", log_prints=True)
def reconcile(params: ReconcileParams = ReconcileParams()) -> str:  # noqa: B008 - immutable default
    """Revert every unsettled ledger entry on the target (after a killed run)."""
    result = reconcile_target(params.target, Settings(), run_id=params.run_id)
    print(f"reconcile {params.target}: {result}")
    return str(result)


