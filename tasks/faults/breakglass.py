"""Break-glass: reserved API server seats for the runner before it overloads the control plane.

Creates a PriorityLevelConfiguration (Limited, high nominal concurrency shares, its own queues, lends
nothing) and a FlowSchema with a very low matchingPrecedence (matched before every default but exempt and
probes) whose only subject is the runner's user, both named ``gameday-breakglass-<run_id>``. The storm
runs under another identity, so it cannot starve the runner and rollback still reaches the API server.
Undo: delete the FlowSchema, then the priority level (each tolerated if already gone).
"""

from __future__ import annotations

from typing import Any

from tasks.cluster_ops import Manifest
from tasks.errors import Conflict
from tasks.faults.selection import MANAGED_BY, k8s_name

API_VERSION = "flowcontrol.apiserver.k8s.io/v1"
MATCHING_PRECEDENCE = 50
NOMINAL_SHARES = 200


def breakglass_name(run_id: str) -> str:
    """The name shared by the FlowSchema and the priority level."""
    return k8s_name("gameday-breakglass", run_id, limit=253)


def priority_level(name: str) -> Manifest:
    """The break-glass PriorityLevelConfiguration."""
    return {
        "apiVersion": API_VERSION, "kind": "PriorityLevelConfiguration",
        "metadata": {"name": name, "labels": dict(MANAGED_BY)},
        "spec": {"type": "Limited", "limited": {
            "nominalConcurrencyShares": NOMINAL_SHARES, "lendablePercent": 0,
            "limitResponse": {"type": "Queue", "queuing": {"queues": 8, "handSize": 2, "queueLengthLimit": 50}},
        }},
    }


def flow_schema(name: str, user: str) -> Manifest:
    """The break-glass FlowSchema: every request of ``user`` goes to the break-glass priority level."""
    return {
        "apiVersion": API_VERSION, "kind": "FlowSchema",
        "metadata": {"name": name, "labels": dict(MANAGED_BY)},
        "spec": {
            "priorityLevelConfiguration": {"name": name},
            "matchingPrecedence": MATCHING_PRECEDENCE,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [{
                "subjects": [{"kind": "User", "user": {"name": user}}],
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                                   "clusterScope": True, "namespaces": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            }],
        },
    }


def open_breakglass(cluster: Any, name: str, user: str) -> None:
    """Create the priority level and the FlowSchema (already existing ones are kept: same run)."""
    for create, body in ((cluster.create_priority_level, priority_level(name)),
                         (cluster.create_flowschema, flow_schema(name, user))):
        try:
            create(body)
        except Conflict:
            pass


def close_breakglass(cluster: Any, name: str) -> dict[str, bool]:
    """Delete the FlowSchema then the priority level; says which existed."""
    return {"flowschema": cluster.delete_flowschema(name), "priority_level": cluster.delete_priority_level(name)}
