"""The default PriorityLevelConfigurations and FlowSchemas, as the real API server bootstraps them.

Shares, queue shapes and matching precedences follow Kubernetes' bootstrap configuration
(``k8s.io/apiserver/pkg/apis/flowcontrol/bootstrap``), trimmed to the schemas that matter in the lab.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
GROUP_VERSION = "flowcontrol.apiserver.k8s.io/v1"
ANNOTATION = {"apf.kubernetes.io/autoupdate-spec": "true"}
ALL_RESOURCES = {
    "verbs": ["*"],
    "apiGroups": ["*"],
    "resources": ["*"],
    "clusterScope": True,
    "namespaces": ["*"],
}
ALL_NON_RESOURCES = {"verbs": ["*"], "nonResourceURLs": ["*"]}
ANY_USER = [
    {"kind": "Group", "group": {"name": "system:authenticated"}},
    {"kind": "Group", "group": {"name": "system:unauthenticated"}},
]


def _plc(name: str, shares: int, lendable: int, queues: int, hand: int, length: int = 50) -> Obj:
    limited: Obj = {"nominalConcurrencyShares": shares, "lendablePercent": lendable}
    if queues:
        limited["limitResponse"] = {
            "type": "Queue",
            "queuing": {"queues": queues, "handSize": hand, "queueLengthLimit": length},
        }
    else:
        limited["limitResponse"] = {"type": "Reject"}
    return {"metadata": {"name": name}, "spec": {"type": "Limited", "limited": limited}}


def _group(name: str) -> Obj:
    return {"kind": "Group", "group": {"name": name}}


def _fs(
    name: str, level: str, precedence: int, subjects: list[Obj], res: list[Obj], nonres: list[Obj]
) -> Obj:
    rule: Obj = {"subjects": subjects}
    if res:
        rule["resourceRules"] = res
    if nonres:
        rule["nonResourceRules"] = nonres
    spec: Obj = {
        "priorityLevelConfiguration": {"name": level},
        "matchingPrecedence": precedence,
        "rules": [rule],
    }
    if level != "exempt":
        spec["distinguisherMethod"] = {"type": "ByUser"}
    return {"metadata": {"name": name}, "spec": spec}


def _leases(namespaces: list[str]) -> Obj:
    return {
        "verbs": ["get", "create", "update"],
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "namespaces": namespaces,
    }


def priority_levels() -> list[Obj]:
    """The default PriorityLevelConfigurations (exempt, system, node-high, ..., catch-all)."""
    exempt: Obj = {
        "metadata": {"name": "exempt"},
        "spec": {"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}},
    }
    return [
        exempt,
        _plc("system", 30, 33, 64, 6),
        _plc("node-high", 40, 25, 64, 6),
        _plc("leader-election", 10, 0, 16, 4),
        _plc("workload-high", 40, 50, 128, 6),
        _plc("workload-low", 100, 90, 128, 6),
        _plc("global-default", 20, 50, 128, 6),
        _plc("catch-all", 5, 0, 0, 0),
    ]


def flow_schemas() -> list[Obj]:
    """The default FlowSchemas, in the real server's precedence order."""
    nodes_rule = {
        "verbs": ["*"],
        "apiGroups": [""],
        "resources": ["nodes", "nodes/status"],
        "clusterScope": True,
    }
    node_leases = {
        "verbs": ["*"],
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "namespaces": ["*"],
    }
    probes = {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/readyz", "/livez"]}
    sa_kube_system = _group("system:serviceaccounts:kube-system")
    return [
        _fs("exempt", "exempt", 1, [_group("system:masters")], [ALL_RESOURCES], [ALL_NON_RESOURCES]),
        _fs("probes", "exempt", 2, ANY_USER, [], [probes]),
        _fs(
            "system-leader-election",
            "leader-election",
            100,
            [
                {"kind": "User", "user": {"name": "system:kube-controller-manager"}},
                {"kind": "User", "user": {"name": "system:kube-scheduler"}},
            ],
            [_leases(["kube-system"])],
            [],
        ),
        _fs(
            "workload-leader-election",
            "leader-election",
            200,
            [sa_kube_system],
            [_leases(["kube-system"])],
            [],
        ),
        _fs("system-node-high", "node-high", 400, [_group("system:nodes")], [nodes_rule, node_leases], []),
        _fs("system-nodes", "system", 500, [_group("system:nodes")], [ALL_RESOURCES], [ALL_NON_RESOURCES]),
        _fs(
            "kube-system-service-accounts",
            "workload-high",
            900,
            [sa_kube_system],
            [ALL_RESOURCES],
            [ALL_NON_RESOURCES],
        ),
        _fs(
            "service-accounts",
            "workload-low",
            9000,
            [_group("system:serviceaccounts")],
            [ALL_RESOURCES],
            [ALL_NON_RESOURCES],
        ),
        _fs("global-default", "global-default", 9900, ANY_USER, [ALL_RESOURCES], [ALL_NON_RESOURCES]),
        _fs("catch-all", "catch-all", 10000, ANY_USER, [ALL_RESOURCES], [ALL_NON_RESOURCES]),
    ]
