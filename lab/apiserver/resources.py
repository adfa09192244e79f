"""The data-driven table of resources the emulated API server serves.

Adding a resource is one ``Resource(...)`` line in ``RESOURCES``; discovery, storage, routing and
APF work estimates all derive from this table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

READ_VERBS = ("get", "list", "watch")
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    """One served resource: where it lives, what it is called and what it can do."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    singular: str = field(default="")

    @property
    def api_version(self) -> str:
        """The apiVersion string objects of this resource carry."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """A unique storage key (plural.group)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular_name(self) -> str:
        """The lower-case singular name used by discovery."""
        return self.singular or self.kind.lower()


def _r(
    group: str,
    version: str,
    plural: str,
    kind: str,
    namespaced: bool,
    short: tuple[str, ...] = (),
    sub: tuple[str, ...] = (),
    verbs: tuple[str, ...] = ALL_VERBS,
    cats: tuple[str, ...] = (),
) -> Resource:
    return Resource(group, version, plural, kind, namespaced, short, verbs, sub, cats)


ALL = ("all",)
RESOURCES: tuple[Resource, ...] = (
    _r("", "v1", "namespaces", "Namespace", False, ("ns",), ("status",)),
    _r("", "v1", "nodes", "Node", False, ("no",), ("status",)),
    _r("", "v1", "pods", "Pod", True, ("po",), ("status", "eviction", "binding"), cats=ALL),
    _r("", "v1", "services", "Service", True, ("svc",), ("status",), cats=ALL),
    _r("", "v1", "endpoints", "Endpoints", True, ("ep",)),
    _r("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    _r("", "v1", "secrets", "Secret", True),
    _r("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    _r("", "v1", "events", "Event", True, ("ev",)),
    _r("coordination.k8s.io", "v1", "leases", "Lease", True),
    _r("apps", "v1", "deployments", "Deployment", True, ("deploy",), ("scale", "status"), cats=ALL),
    _r("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), ("status",), cats=ALL),
    _r("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), ("scale", "status"), cats=ALL),
    _r("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",), ("status",)),
    _r("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",)),
    _r("flowcontrol.apiserver.k8s.io", "v1", "flowschemas", "FlowSchema", False, (), ("status",)),
    _r(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "prioritylevelconfigurations",
        "PriorityLevelConfiguration",
        False,
        (),
        ("status",),
    ),
    _r("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", False, verbs=("create",)),
    _r("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False, verbs=("create",)),
    _r(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        False,
        verbs=("create",),
    ),
    _r("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", False, verbs=("create",)),
    _r("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    _r("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    _r("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _r("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _r("events.k8s.io", "v1", "events", "Event", True, ("ev",)),
)

BY_PATH: dict[tuple[str, str, str], Resource] = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KEY: dict[str, Resource] = {r.key: r for r in RESOURCES}
# Group -> versions served, in discovery order.
GROUPS: dict[str, list[str]] = {}
for _res in RESOURCES:
    _versions = GROUPS.setdefault(_res.group, [])
    if _res.version not in _versions:
        _versions.append(_res.version)

# Resources answered per request and never stored (reviews).
REVIEWS = {"tokenreviews", "selfsubjectreviews", "selfsubjectaccessreviews", "subjectaccessreviews"}
# Subresources served by the eviction/scale/token handlers rather than plain storage.
SUBRESOURCE_KINDS: dict[str, tuple[str, str, str]] = {
    "eviction": ("policy", "v1", "Eviction"),
    "binding": ("", "v1", "Binding"),
    "scale": ("autoscaling", "v1", "Scale"),
}


def lookup(group: str, version: str, plural: str) -> Resource | None:
    """Return the resource served at group/version/plural, if any."""
    return BY_PATH.get((group, version, plural))
