"""What a ``/v1`` call asks permission for, as a Kubernetes SubjectAccessReview (authorization.k8s.io/v1).

Every call is an action on the virtual resource ``agentfaults.gameday.dev`` named after the node:
inject = ``create``, lease renew = ``update``, revert / revert-all = ``delete``, listing faults or
devices = ``list``, reading one fault = ``get``. A runner is granted the use of the agents with an
ordinary RBAC rule, e.g. ``{apiGroups: [gameday.dev], resources: [agentfaults], verbs: [create, update,
delete, get, list]}``, optionally narrowed with ``resourceNames`` to some nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

GROUP = "gameday.dev"
RESOURCE = "agentfaults"
SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
Mode = Literal["allowlist", "sar", "any"]
MODES: tuple[Mode, ...] = ("allowlist", "sar", "any")


@dataclass(frozen=True)
class Identity:
    """Who a token belongs to, as the cluster's TokenReview reported it."""

    username: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def verb_for(method: str, path: str) -> str:
    """The RBAC verb of an agent call (method + ``/v1/...`` path)."""
    parts = [p for p in path.split("/") if p]
    if method == "POST":
        return "update" if parts[-1:] == ["renew"] else "create"
    if method == "DELETE":
        return "delete"
    if method in ("PUT", "PATCH"):
        return "update"
    single = len(parts) >= 3 and parts[1] == "faults"
    return "get" if single else "list"


def sar_body(who: Identity, verb: str, node: str) -> dict[str, object]:
    """The SubjectAccessReview asking whether ``who`` may ``verb`` this node's agentfaults."""
    spec: dict[str, object] = {
        "user": who.username,
        "groups": list(who.groups),
        "resourceAttributes": {"group": GROUP, "resource": RESOURCE, "name": node, "verb": verb},
    }
    if who.uid:
        spec["uid"] = who.uid
    if who.extra:
        spec["extra"] = {k: list(v) for k, v in who.extra.items()}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


def missing(who: Identity, verb: str, node: str, reason: str) -> str:
    """The 403 message: the identity, the permission it lacks and how to grant it."""
    why = f" ({reason})" if reason else ""
    return (f"identity {who.username!r} (groups {list(who.groups)}) may not {verb} {RESOURCE}.{GROUP} {node!r}: "
            f"the cluster's SubjectAccessReview denied it{why}; grant it with a (Cluster)Role rule "
            f"{{apiGroups: [{GROUP}], resources: [{RESOURCE}], verbs: [{verb}]}} bound to this identity")
