"""RBAC evaluation for SubjectAccessReviews: does any (Cluster)Role bound to an identity allow a request?

Follows the real authorizer (``plugin/pkg/auth/authorizer/rbac``): subjects User, Group and
ServiceAccount (``system:serviceaccount:<ns>:<name>``; a RoleBinding's ServiceAccount subject without a
namespace means the binding's); a rule matches on verbs, apiGroups, resources (``resource/subresource``,
``*``, ``*/subresource``), resourceNames, or nonResourceURLs (exact, ``*`` or a ``prefix*``). Every
ClusterRoleBinding applies everywhere; a RoleBinding applies only to requests in its namespace, with its
Role (same namespace) or a ClusterRole. Answers aggregate over all bindings: the first rule that allows
wins; nothing ever denies. ClusterRoles with an ``aggregationRule`` take the rules of the ClusterRoles
whose labels match its ``matchLabels`` selectors (the real controller does this asynchronously).
Members of ``system:masters`` are always allowed, as the real server's superuser shortcut.

The evaluator is pure: it reads roles and bindings through ``RbacSource``; ``StoreSource`` adapts the
API server's store. The lab API server does not enforce these answers on its own requests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from lab.apiserver.resources import BY_KEY
from lab.apiserver.store import Obj, Store, Table

GROUP = "rbac.authorization.k8s.io"
MASTERS = "system:masters"
SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class Attributes:
    """What is being asked: who, and either a resource request or a non-resource path."""

    user: str
    groups: tuple[str, ...] = ()
    verb: str = ""
    namespace: str = ""
    group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""
    resource_request: bool = True


@dataclass
class Decision:
    """The answer: allowed, the reason the real authorizer would give, and evaluation errors."""

    allowed: bool
    reason: str = ""
    errors: list[str] = field(default_factory=list)


class RbacSource(Protocol):
    """Where roles and bindings come from."""

    def cluster_role_bindings(self) -> Iterable[Obj]:
        """Every ClusterRoleBinding."""

    def role_bindings(self, namespace: str) -> Iterable[Obj]:
        """The RoleBindings of one namespace."""

    def cluster_roles(self) -> Iterable[Obj]:
        """Every ClusterRole (for aggregation)."""

    def cluster_role(self, name: str) -> Obj | None:
        """One ClusterRole, or None."""

    def role(self, namespace: str, name: str) -> Obj | None:
        """One Role, or None."""


def _has(values: Iterable[str], want: str) -> bool:
    return any(v == "*" or v == want for v in values)


def applies_to(subject: Obj, user: str, groups: tuple[str, ...], namespace: str) -> bool:
    """Whether a binding subject names this user; ``namespace`` is the binding's ("" for cluster bindings)."""
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return bool(user == name)
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        sa_ns = subject.get("namespace") or namespace
        return bool(sa_ns) and user == f"{SA_PREFIX}{sa_ns}:{name}"
    return False


def _resource_matches(rule_resources: list[str], resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for r in rule_resources:
        if r in ("*", combined):
            return True
        if subresource and r == f"*/{subresource}":
            return True
    return False


def _url_matches(rule_urls: list[str], path: str) -> bool:
    for url in rule_urls:
        if url == "*" or url == path:
            return True
        if url.endswith("*") and path.startswith(url[:-1]):
            return True
    return False


def rule_allows(rule: Obj, attrs: Attributes) -> bool:
    """Whether one PolicyRule allows the request."""
    if not _has(rule.get("verbs") or [], attrs.verb):
        return False
    if not attrs.resource_request:
        return _url_matches(rule.get("nonResourceURLs") or [], attrs.path)
    if not _has(rule.get("apiGroups") or [], attrs.group):
        return False
    if not _resource_matches(rule.get("resources") or [], attrs.resource, attrs.subresource):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def _labels_match(selector: Obj, labels: dict[str, str]) -> bool:
    want = selector.get("matchLabels") or {}
    return bool(want) and all(labels.get(k) == v for k, v in want.items())


def role_rules(source: RbacSource, ref: Obj, namespace: str) -> tuple[list[Obj], str | None]:
    """The rules a roleRef points at, and an error when it points at nothing."""
    kind, name = ref.get("kind"), ref.get("name", "")
    if kind == "Role" and namespace:
        role = source.role(namespace, name)
        what = f'role.rbac.authorization.k8s.io "{name}" not found'
    elif kind == "ClusterRole":
        role = source.cluster_role(name)
        what = f'clusterrole.rbac.authorization.k8s.io "{name}" not found'
    else:
        return [], f"unsupported roleRef kind {kind!r}"
    if role is None:
        return [], what
    rules = list(role.get("rules") or [])
    aggregation = role.get("aggregationRule") if kind == "ClusterRole" else None
    if isinstance(aggregation, dict):
        selectors = aggregation.get("clusterRoleSelectors") or []
        for other in source.cluster_roles():
            labels = (other.get("metadata") or {}).get("labels") or {}
            if other is not role and any(_labels_match(s, labels) for s in selectors):
                rules.extend(other.get("rules") or [])
    return rules, None


def _bindings(source: RbacSource, namespace: str) -> Iterable[tuple[str, Obj]]:
    for binding in source.cluster_role_bindings():
        yield "", binding
    if namespace:
        for binding in source.role_bindings(namespace):
            yield namespace, binding


def _describe(binding_ns: str, binding: Obj, subject: Obj) -> str:
    ref = binding.get("roleRef") or {}
    kind = "RoleBinding" if binding_ns else "ClusterRoleBinding"
    where = f"{binding_ns}/" if binding_ns else ""
    return (
        f'RBAC: allowed by {kind} "{where}{binding["metadata"]["name"]}" of {ref.get("kind")} '
        f'"{ref.get("name")}" to {subject.get("kind")} "{subject.get("name")}"'
    )


def authorize(source: RbacSource, attrs: Attributes) -> Decision:
    """Evaluate a request against every binding that names the user."""
    if MASTERS in attrs.groups:
        return Decision(True, f"allowed: {MASTERS} is a superuser group")
    problems: list[str] = []
    namespace = attrs.namespace if attrs.resource_request else ""
    for binding_ns, binding in _bindings(source, namespace):
        subject = next(
            (s for s in binding.get("subjects") or [] if applies_to(s, attrs.user, attrs.groups, binding_ns)),
            None,
        )
        if subject is None:
            continue
        rules, error = role_rules(source, binding.get("roleRef") or {}, binding_ns)
        if error:
            problems.append(error)
            continue
        if any(rule_allows(rule, attrs) for rule in rules):
            return Decision(True, _describe(binding_ns, binding, subject))
    reason = f"RBAC: [{', '.join(problems)}]" if problems else ""
    return Decision(False, reason, problems)


class StoreSource:
    """An ``RbacSource`` over the API server's store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _table(self, plural: str) -> Table:
        return self.store.table(BY_KEY[f"{plural}.{GROUP}"])

    def cluster_role_bindings(self) -> Iterable[Obj]:
        """Every ClusterRoleBinding."""
        return list(self._table("clusterrolebindings").iter_sorted(None))

    def role_bindings(self, namespace: str) -> Iterable[Obj]:
        """The RoleBindings of one namespace."""
        return list(self._table("rolebindings").iter_sorted(namespace))

    def cluster_roles(self) -> Iterable[Obj]:
        """Every ClusterRole."""
        return list(self._table("clusterroles").iter_sorted(None))

    def cluster_role(self, name: str) -> Obj | None:
        """One ClusterRole."""
        return self._table("clusterroles").get("", name)

    def role(self, namespace: str, name: str) -> Obj | None:
        """One Role."""
        return self._table("roles").get(namespace, name)
