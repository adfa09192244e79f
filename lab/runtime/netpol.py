"""NetworkPolicy ingress enforcement for the lab's service front (the part a CNI plugin plays).

The service proxy does not know which pod a connection comes from (every client is on loopback), so
only *source-agnostic* ingress is modelled: a pod selected by a policy of type Ingress is isolated,
and a connection to one of its ports is admitted only by a rule with no ``from`` clause whose
``ports`` (if any) include that port and protocol. Rules with ``from`` (pod, namespace or ipBlock
peers) admit nothing here. Egress policies are not enforced. Traffic sent straight to a pod IP,
bypassing a Service, is not filtered.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def selects(selector: Obj | None, labels: dict[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels and matchExpressions) matches ``labels``; empty selects all."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(op, False)
        if not ok:
            return False
    return True


def _is_ingress(policy: Obj) -> bool:
    types = (policy.get("spec") or {}).get("policyTypes")
    return not types or "Ingress" in types


def _rule_admits(rule: Obj, port: int, port_name: str, protocol: str) -> bool:
    if rule.get("from"):
        return False
    ports = rule.get("ports") or []
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        want = p.get("port")
        if want is None or want == port or (port_name and want == port_name):
            return True
        end = p.get("endPort")
        if isinstance(want, int) and end and want <= port <= int(end):
            return True
    return False


def admits(policies: list[Obj], pod: Obj, port: int, port_name: str, protocol: str) -> bool:
    """Whether ingress to ``pod`` on ``port``/``protocol`` from an unknown source is allowed."""
    ns = (pod.get("metadata") or {}).get("namespace", "")
    labels = (pod.get("metadata") or {}).get("labels") or {}
    selecting = [
        p for p in policies
        if (p.get("metadata") or {}).get("namespace") == ns and _is_ingress(p)
        and selects((p.get("spec") or {}).get("podSelector"), labels)
    ]
    if not selecting:
        return True
    return any(
        _rule_admits(rule, port, port_name, protocol)
        for p in selecting for rule in (p.get("spec") or {}).get("ingress") or []
    )
