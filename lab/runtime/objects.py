"""Pure helpers over Kubernetes objects: quantities, readiness, taints and tolerations, selectors, times."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

Obj = dict[str, Any]

_SUFFIX = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
    "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "m": 1e-3,
}


def parse_quantity(value: object) -> float:
    """A Kubernetes quantity ("500m", "2Gi", 8) as a float in base units."""
    text = str(value).strip()
    if not text:
        return 0.0
    for suffix in ("Ki", "Mi", "Gi", "Ti", "Pi", "k", "K", "M", "G", "T", "P", "m"):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * _SUFFIX[suffix]
    return float(text)


def now_micro() -> str:
    """The current time as a MicroTime string (Lease renewTime)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_time() -> str:
    """The current time as a Time string (second precision)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> float | None:
    """A Time/MicroTime string as a UNIX timestamp."""
    if not value:
        return None
    text = value.replace("Z", "+00:00")
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def pod_requests(pod: Obj) -> dict[str, float]:
    """Summed container requests of a pod (cpu in cores, memory in bytes, extended resources)."""
    total: dict[str, float] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        requests = (container.get("resources") or {}).get("requests") or {}
        limits = (container.get("resources") or {}).get("limits") or {}
        for name, qty in {**limits, **requests}.items():
            if name in requests or name not in ("cpu", "memory"):
                total[name] = total.get(name, 0.0) + parse_quantity(qty)
    return total


def condition(obj: Obj, ctype: str) -> Obj | None:
    """The status condition of a type, if present."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return dict(cond)
    return None


def pod_ready(pod: Obj) -> bool:
    """Whether a pod's Ready condition is True."""
    cond = condition(pod, "Ready")
    return bool(cond and cond.get("status") == "True")


def node_ready(node: Obj) -> bool:
    """Whether a node's Ready condition is True."""
    cond = condition(node, "Ready")
    return bool(cond and cond.get("status") == "True")


def is_terminating(obj: Obj) -> bool:
    """Whether an object has a deletionTimestamp."""
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def is_active_pod(pod: Obj) -> bool:
    """A pod that counts toward its owner: not terminating, not Succeeded/Failed."""
    phase = (pod.get("status") or {}).get("phase")
    return not is_terminating(pod) and phase not in ("Succeeded", "Failed")


def tolerates(tolerations: list[Obj], taint: Obj) -> Obj | None:
    """The toleration that tolerates a taint, or None (Kubernetes' ToleratesTaint rules)."""
    for tol in tolerations:
        effect = tol.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        op = tol.get("operator") or "Equal"
        key = tol.get("key") or ""
        if op == "Exists" and not key:
            return tol
        if key != taint.get("key"):
            continue
        if op == "Exists" or (tol.get("value") or "") == (taint.get("value") or ""):
            return tol
    return None


def untolerated(tolerations: list[Obj], taints: list[Obj], effects: tuple[str, ...]) -> list[Obj]:
    """The taints with one of the effects that the tolerations do not tolerate."""
    return [t for t in taints if t.get("effect") in effects and tolerates(tolerations, t) is None]


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether labels satisfy an equality selector (an empty selector matches everything)."""
    return all(labels.get(k) == v for k, v in selector.items())


def label_selector_match(selector: Obj, labels: dict[str, str]) -> bool:
    """Whether labels satisfy a LabelSelector (matchLabels and matchExpressions)."""
    if not labels_match(selector.get("matchLabels") or {}, labels):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and (not present or labels[key] not in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def template_hash(template: Obj) -> str:
    """A stable short hash of a pod template (the pod-template-hash label)."""
    raw = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:10]


def owner_ref(owner: Obj, kind: str, api_version: str) -> Obj:
    """A controller ownerReference to an object."""
    meta = owner["metadata"]
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": meta["name"],
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: Obj) -> str | None:
    """The uid of an object's controlling owner, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None
