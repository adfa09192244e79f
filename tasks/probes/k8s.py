"""The ``kubernetes`` probe: counts read from the API (available replicas, ready/cordoned nodes, running/ready pods)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tasks.errors import ProbeError
from tasks.probes.tolerance import within

if TYPE_CHECKING:
    from blueprints.probes import KubernetesProbe
    from tasks.probes import ProbeContext, ProbeResult


def node_is_ready(node: Any) -> bool:
    """Whether a node's Ready condition is True."""
    for cond in (node.status.conditions if node.status else None) or []:
        if cond.type == "Ready":
            return bool(cond.status == "True")
    return False


def pod_is_ready(pod: Any) -> bool:
    """Whether a pod is not being deleted and its Ready condition is True (its Service would send it traffic)."""
    if pod.metadata.deletion_timestamp:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions if pod.status else None) or [])


def measure(spec: KubernetesProbe, cluster: Any) -> Any:
    """The value the check measures."""
    if spec.check == "deployment-available":
        dep = cluster.read_deployment(spec.namespace, spec.object_name)
        return int((dep.status.available_replicas if dep.status else 0) or 0)
    if spec.check == "daemonset-available":
        ds = cluster.read_daemonset(spec.namespace, spec.object_name)
        return int((ds.status.number_available if ds.status else 0) or 0)
    if spec.check == "node-ready":
        return node_is_ready(cluster.read_node(spec.object_name))
    if spec.check in ("nodes-ready", "nodes-cordoned"):
        nodes = cluster.list_nodes(spec.label_selector)
        if spec.check == "nodes-ready":
            return sum(1 for n in nodes if node_is_ready(n))
        return sum(1 for n in nodes if n.spec and n.spec.unschedulable)
    pods = cluster.list_pods([spec.namespace] if spec.namespace else None, spec.label_selector)
    if spec.check == "pods-ready":
        return sum(1 for p in pods if pod_is_ready(p))
    return sum(1 for p in pods if p.status and p.status.phase == "Running" and not p.metadata.deletion_timestamp)


def evaluate(spec: KubernetesProbe, ctx: ProbeContext) -> ProbeResult:
    """Measure and check the tolerance; ProbeError when the API cannot be asked."""
    from tasks.probes import ProbeResult

    if ctx.cluster is None:
        raise ProbeError(f"probe {spec.name!r}: no cluster to ask")
    value = measure(spec, ctx.cluster)
    where = spec.object_name or spec.namespace or "cluster"
    return ProbeResult(ok=within(spec.tolerance, value), value=value, message=f"{spec.check} {where}: {value}")
