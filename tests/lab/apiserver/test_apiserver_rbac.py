"""RBAC evaluation (lab.apiserver.rbac): roles vs cluster roles, namespace scoping, rule matching, subjects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from lab.apiserver.rbac import Attributes, applies_to, authorize, rule_allows

Obj = dict[str, Any]
RBAC = "rbac.authorization.k8s.io"


class Source:
    """An in-memory RbacSource."""

    def __init__(self, *objs: Obj) -> None:
        self.objs = list(objs)

    def _of(self, kind: str, namespace: str = "") -> list[Obj]:
        return [o for o in self.objs if o["kind"] == kind and o["metadata"].get("namespace", "") == namespace]

    def cluster_role_bindings(self) -> Iterable[Obj]:
        """Every ClusterRoleBinding."""
        return self._of("ClusterRoleBinding")

    def role_bindings(self, namespace: str) -> Iterable[Obj]:
        """The namespace's RoleBindings."""
        return self._of("RoleBinding", namespace)

    def cluster_roles(self) -> Iterable[Obj]:
        """Every ClusterRole."""
        return self._of("ClusterRole")

    def cluster_role(self, name: str) -> Obj | None:
        """One ClusterRole."""
        return next((o for o in self._of("ClusterRole") if o["metadata"]["name"] == name), None)

    def role(self, namespace: str, name: str) -> Obj | None:
        """One Role."""
        return next((o for o in self._of("Role", namespace) if o["metadata"]["name"] == name), None)


def role(kind: str, name: str, *rules: Obj, namespace: str = "", labels: dict[str, str] | None = None) -> Obj:
    """A Role or ClusterRole."""
    meta: Obj = {"name": name, "labels": labels or {}}
    if namespace:
        meta["namespace"] = namespace
    return {"kind": kind, "metadata": meta, "rules": list(rules)}


def binding(kind: str, name: str, ref_kind: str, ref: str, *subjects: Obj, namespace: str = "") -> Obj:
    """A RoleBinding or ClusterRoleBinding."""
    meta: Obj = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": RBAC, "kind": ref_kind, "name": ref},
        "subjects": list(subjects),
    }


def rule(
    verbs: list[str], groups: list[str] | None = None, resources: list[str] | None = None, **more: Any
) -> Obj:
    """A PolicyRule."""
    out: Obj = {"verbs": verbs}
    if groups is not None:
        out["apiGroups"] = groups
    if resources is not None:
        out["resources"] = resources
    return out | more


def user(name: str) -> Obj:
    """A User subject."""
    return {"kind": "User", "name": name, "apiGroup": RBAC}


def ask(
    verb: str,
    resource: str,
    namespace: str = "",
    group: str = "",
    name: str = "",
    sub: str = "",
    who: str = "alice",
    groups: tuple[str, ...] = ("system:authenticated",),
) -> Attributes:
    """Resource request attributes."""
    return Attributes(who, groups, verb, namespace, group, resource, sub, name)


PODS_READER = role("ClusterRole", "pods-reader", rule(["get", "list"], [""], ["pods"]))


def test_nothing_bound_is_denied_without_reason() -> None:
    """With no binding naming the user the answer is no, and (like real RBAC) no reason."""
    decision = authorize(Source(PODS_READER), ask("get", "pods", "default"))
    assert not decision.allowed and decision.reason == ""


def test_cluster_role_binding_applies_everywhere() -> None:
    """A ClusterRoleBinding allows in every namespace and for cluster-scoped requests, with a reason naming it."""
    src = Source(
        PODS_READER, binding("ClusterRoleBinding", "alice-pods", "ClusterRole", "pods-reader", user("alice"))
    )
    assert authorize(src, ask("list", "pods", "ns-1")).allowed and authorize(src, ask("list", "pods")).allowed
    reason = authorize(src, ask("get", "pods", "x")).reason
    assert 'ClusterRoleBinding "alice-pods"' in reason and 'ClusterRole "pods-reader"' in reason
    assert not authorize(src, ask("delete", "pods", "ns-1")).allowed


def test_role_binding_is_scoped_to_its_namespace() -> None:
    """A RoleBinding to a ClusterRole or a Role allows only in the binding's namespace, never cluster-wide."""
    src = Source(
        PODS_READER,
        role("Role", "cm-writer", rule(["create"], [""], ["configmaps"]), namespace="team-a"),
        binding("RoleBinding", "rb1", "ClusterRole", "pods-reader", user("alice"), namespace="team-a"),
        binding("RoleBinding", "rb2", "Role", "cm-writer", user("alice"), namespace="team-a"),
    )
    assert authorize(src, ask("get", "pods", "team-a")).allowed
    assert not authorize(src, ask("get", "pods", "team-b")).allowed
    assert not authorize(src, ask("get", "pods")).allowed
    assert authorize(src, ask("create", "configmaps", "team-a")).allowed
    assert not authorize(src, ask("create", "configmaps", "team-b")).allowed


def test_role_ref_to_a_role_in_another_namespace_does_not_count() -> None:
    """A RoleBinding's Role is looked up in the binding's own namespace; a missing role is an evaluation error."""
    src = Source(
        role("Role", "r", rule(["get"], [""], ["pods"]), namespace="other"),
        binding("RoleBinding", "rb", "Role", "r", user("alice"), namespace="team-a"),
    )
    decision = authorize(src, ask("get", "pods", "team-a"))
    assert not decision.allowed and 'role.rbac.authorization.k8s.io "r" not found' in decision.reason


def test_aggregated_over_all_bindings() -> None:
    """Permissions add up across bindings: each grants one verb, together both are allowed."""
    src = Source(
        role("ClusterRole", "get", rule(["get"], ["apps"], ["deployments"])),
        role("ClusterRole", "scale", rule(["update"], ["apps"], ["deployments/scale"])),
        binding("ClusterRoleBinding", "b1", "ClusterRole", "get", user("alice")),
        binding("ClusterRoleBinding", "b2", "ClusterRole", "scale", user("alice")),
    )
    assert authorize(src, ask("get", "deployments", "x", "apps")).allowed
    assert authorize(src, ask("update", "deployments", "x", "apps", sub="scale")).allowed
    assert not authorize(src, ask("update", "deployments", "x", "apps")).allowed


@pytest.mark.parametrize(
    ("the_rule", "attrs", "allowed"),
    [
        (rule(["*"], ["*"], ["*"]), ask("deletecollection", "widgets", "n", "example.com"), True),
        (rule(["get"], [""], ["pods/*"]), ask("get", "pods", "n", sub="log"), False),
        (rule(["get"], [""], ["pods/log"]), ask("get", "pods", "n", sub="log"), True),
        (rule(["get"], [""], ["pods"]), ask("get", "pods", "n", sub="log"), False),
        (rule(["get"], [""], ["*/status"]), ask("get", "nodes", sub="status"), True),
        (rule(["get"], ["apps"], ["pods"]), ask("get", "pods", "n"), False),
        (
            rule(["create"], ["gameday.dev"], ["agentfaults"], resourceNames=["gpu-1"]),
            ask("create", "agentfaults", group="gameday.dev", name="gpu-1"),
            True,
        ),
        (
            rule(["create"], ["gameday.dev"], ["agentfaults"], resourceNames=["gpu-1"]),
            ask("create", "agentfaults", group="gameday.dev", name="gpu-2"),
            False,
        ),
        (
            rule(["list"], ["gameday.dev"], ["agentfaults"], resourceNames=["gpu-1"]),
            ask("list", "agentfaults", group="gameday.dev"),
            False,
        ),
    ],
)
def test_rule_matching(the_rule: Obj, attrs: Attributes, allowed: bool) -> None:
    """Verbs, groups, resources with subresources and wildcards, and resourceNames match like the real evaluator."""
    assert rule_allows(the_rule, attrs) is allowed


@pytest.mark.parametrize(
    ("urls", "path", "allowed"),
    [
        (["/healthz"], "/healthz", True),
        (["/healthz"], "/healthz/etcd", False),
        (["/healthz/*"], "/healthz/etcd", True),
        (["*"], "/metrics", True),
        (["/metrics"], "/version", False),
    ],
)
def test_non_resource_urls(urls: list[str], path: str, allowed: bool) -> None:
    """nonResourceURLs match exactly, by a trailing-* prefix or by *; only ClusterRoleBindings grant them."""
    src = Source(
        role("ClusterRole", "urls", {"verbs": ["get"], "nonResourceURLs": urls}),
        binding("ClusterRoleBinding", "b", "ClusterRole", "urls", user("alice")),
    )
    attrs = Attributes("alice", (), "get", path=path, resource_request=False)
    assert authorize(src, attrs).allowed is allowed
    assert not authorize(src, Attributes("alice", (), "post", path=path, resource_request=False)).allowed


def test_group_and_service_account_subjects() -> None:
    """Group subjects match the user's groups; ServiceAccount subjects match system:serviceaccount:<ns>:<name>."""
    group = {"kind": "Group", "name": "gameday:runners", "apiGroup": RBAC}
    sa = {"kind": "ServiceAccount", "name": "runner", "namespace": "gameday"}
    assert applies_to(group, "bob", ("gameday:runners",), "")
    assert not applies_to(group, "gameday:runners", (), "")
    assert applies_to(sa, "system:serviceaccount:gameday:runner", (), "")
    assert not applies_to(sa, "system:serviceaccount:other:runner", (), "")
    assert not applies_to(user("alice"), "alicia", (), "")


def test_service_account_subject_defaults_to_the_binding_namespace() -> None:
    """A RoleBinding's ServiceAccount subject without a namespace means the binding's namespace."""
    src = Source(
        PODS_READER,
        binding(
            "RoleBinding",
            "rb",
            "ClusterRole",
            "pods-reader",
            {"kind": "ServiceAccount", "name": "ci"},
            namespace="build",
        ),
    )
    sa_user = "system:serviceaccount:build:ci"
    assert authorize(src, ask("get", "pods", "build", who=sa_user)).allowed
    assert not authorize(src, ask("get", "pods", "build", who="system:serviceaccount:other:ci")).allowed


def test_masters_are_always_allowed() -> None:
    """Members of system:masters are allowed anything without any binding."""
    decision = authorize(Source(), ask("delete", "nodes", who="admin", groups=("system:masters",)))
    assert decision.allowed


def test_aggregation_rule_collects_labelled_cluster_roles() -> None:
    """A ClusterRole with an aggregationRule carries the rules of the ClusterRoles its selector matches."""
    agg = role("ClusterRole", "gameday-all")
    agg["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {"gameday.dev/aggregate": "true"}}]}
    part = role(
        "ClusterRole",
        "agentfaults",
        rule(["create"], ["gameday.dev"], ["agentfaults"]),
        labels={"gameday.dev/aggregate": "true"},
    )
    other = role("ClusterRole", "secrets", rule(["get"], [""], ["secrets"]))
    src = Source(
        agg, part, other, binding("ClusterRoleBinding", "b", "ClusterRole", "gameday-all", user("alice"))
    )
    assert authorize(src, ask("create", "agentfaults", group="gameday.dev", name="gpu-1")).allowed
    assert not authorize(src, ask("get", "secrets", "x")).allowed
