"""Access reviews on a real lab API server (lab.apiserver.reviews): RBAC objects stored through the API decide
SubjectAccessReviews from the official Python client and ``kubectl auth can-i`` (SelfSubjectAccessReview)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from lab.apiserver.testing import RunningApiServer
from lab.runtime.apply import Rest, apply, load_documents
from tests.lab.apiserver.conftest import Kubectl

RBAC = "rbac.authorization.k8s.io"
RUNNER_CTX = "lab-gameday-runner"
STORM_CTX = "lab-system-serviceaccount-default-storm"


@pytest.fixture
def rbac(api_client: client.ApiClient) -> client.RbacAuthorizationV1Api:
    """RbacAuthorizationV1Api on the shared server (admin)."""
    return client.RbacAuthorizationV1Api(api_client)


@pytest.fixture
def authz(api_client: client.ApiClient) -> client.AuthorizationV1Api:
    """AuthorizationV1Api on the shared server (admin)."""
    return client.AuthorizationV1Api(api_client)


@pytest.fixture
def cleanup(rbac: client.RbacAuthorizationV1Api) -> Iterator[list[tuple[str, str]]]:
    """Cluster-scoped RBAC objects (kind, name) to delete after the test, even when it fails."""
    made: list[tuple[str, str]] = []
    yield made
    for kind, name in made:
        try:
            if kind == "ClusterRole":
                rbac.delete_cluster_role(name)
            else:
                rbac.delete_cluster_role_binding(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def grant(
    rbac: client.RbacAuthorizationV1Api,
    cleanup: list[tuple[str, str]],
    name: str,
    rule: client.V1PolicyRule,
    subject: client.RbacV1Subject,
) -> None:
    """A ClusterRole with one rule bound to one subject (deleted by the ``cleanup`` fixture)."""
    rbac.create_cluster_role(client.V1ClusterRole(metadata=client.V1ObjectMeta(name=name), rules=[rule]))
    cleanup.append(("ClusterRole", name))
    rbac.create_cluster_role_binding(
        client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name=name),
            subjects=[subject],
            role_ref=client.V1RoleRef(api_group=RBAC, kind="ClusterRole", name=name),
        )
    )
    cleanup.append(("ClusterRoleBinding", name))


def sar(
    authz: client.AuthorizationV1Api,
    user: str,
    groups: list[str],
    verb: str,
    resource: str,
    namespace: str | None = None,
    group: str = "",
    name: str | None = None,
) -> client.V1SubjectAccessReviewStatus:
    """Create a SubjectAccessReview with the official client; returns its status."""
    attrs = client.V1ResourceAttributes(
        verb=verb, resource=resource, group=group, namespace=namespace, name=name
    )
    body = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(user=user, groups=groups, resource_attributes=attrs)
    )
    return authz.create_subject_access_review(body).status


def test_rbac_objects_are_ordinary_resources(rbac: client.RbacAuthorizationV1Api, namespace: str) -> None:
    """Roles and RoleBindings are created, listed, patched and deleted through the Python client; names may hold colons."""
    role = client.V1Role(
        metadata=client.V1ObjectMeta(name="gameday:reader"),
        rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get"])],
    )
    rbac.create_namespaced_role(namespace, role)
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="rb"),
            role_ref=client.V1RoleRef(api_group=RBAC, kind="Role", name="gameday:reader"),
            subjects=[client.RbacV1Subject(kind="User", name="alice", api_group=RBAC)],
        ),
    )
    assert [r.metadata.name for r in rbac.list_namespaced_role(namespace).items] == ["gameday:reader"]
    rbac.patch_namespaced_role("gameday:reader", namespace, {"metadata": {"labels": {"x": "y"}}})
    assert rbac.read_namespaced_role("gameday:reader", namespace).metadata.labels == {"x": "y"}
    assert rbac.read_namespaced_role_binding("rb", namespace).role_ref.name == "gameday:reader"
    rbac.delete_namespaced_role_binding("rb", namespace)
    assert rbac.list_namespaced_role_binding(namespace).items == []


def test_subject_access_review_follows_bindings(
    authz: client.AuthorizationV1Api, rbac: client.RbacAuthorizationV1Api, cleanup: list[tuple[str, str]]
) -> None:
    """A SAR is denied until a ClusterRoleBinding to the user's group exists, then allowed with a reason naming it."""
    groups = ["gameday:runners", "system:authenticated"]
    before = sar(authz, "gameday-runner", groups, "create", "agentfaults", group="gameday.dev", name="gpu-1")
    assert before.allowed is False
    rule = client.V1PolicyRule(api_groups=["gameday.dev"], resources=["agentfaults"], verbs=["create"])
    grant(
        rbac,
        cleanup,
        "runners-agentfaults",
        rule,
        client.RbacV1Subject(kind="Group", name="gameday:runners", api_group=RBAC),
    )
    after = sar(authz, "gameday-runner", groups, "create", "agentfaults", group="gameday.dev", name="gpu-1")
    assert after.allowed is True and "runners-agentfaults" in after.reason
    assert sar(authz, "someone", ["devs"], "create", "agentfaults", group="gameday.dev").allowed is False


def test_role_binding_answers_only_in_its_namespace(
    authz: client.AuthorizationV1Api,
    rbac: client.RbacAuthorizationV1Api,
    namespace: str,
    cleanup: list[tuple[str, str]],
) -> None:
    """A RoleBinding to a ClusterRole allows the service account in the binding's namespace only."""
    rbac.create_cluster_role(
        client.V1ClusterRole(
            metadata=client.V1ObjectMeta(name="cm-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list"])],
        )
    )
    cleanup.append(("ClusterRole", "cm-reader"))
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="storm-cm"),
            role_ref=client.V1RoleRef(api_group=RBAC, kind="ClusterRole", name="cm-reader"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="storm", namespace="default")],
        ),
    )
    who = "system:serviceaccount:default:storm"
    assert sar(authz, who, [], "list", "configmaps", namespace=namespace).allowed is True
    assert sar(authz, who, [], "list", "configmaps", namespace="kube-system").allowed is False
    assert sar(authz, who, [], "list", "configmaps").allowed is False


def test_review_without_attributes_or_subject_is_invalid(api: RunningApiServer) -> None:
    """A SAR naming no user/group, or neither/both kinds of attributes, is 422 Invalid."""
    import urllib.error
    import urllib.request

    def post(spec: dict[str, object]) -> int:
        req = urllib.request.Request(
            f"{api.url}/apis/authorization.k8s.io/v1/subjectaccessreviews",
            method="POST",
            data=json.dumps(
                {"kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "spec": spec}
            ).encode(),
            headers={"Authorization": f"Bearer {api.admin_token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return int(err.code)

    attrs = {"verb": "get", "resource": "pods"}
    assert post({"resourceAttributes": attrs}) == 422
    assert post({"user": "a"}) == 422
    assert (
        post(
            {"user": "a", "resourceAttributes": attrs, "nonResourceAttributes": {"path": "/", "verb": "get"}}
        )
        == 422
    )
    assert post({"user": "a", "resourceAttributes": attrs}) == 201


def test_kubectl_can_i_follows_rbac(kubectl: Kubectl, cleanup: list[tuple[str, str]]) -> None:
    """kubectl auth can-i (protobuf SelfSubjectAccessReview) says no, then yes once kubectl applies a grant."""
    can_i = [
        "auth",
        "can-i",
        "update",
        "deployments.apps/web",
        "--subresource",
        "scale",
        "-n",
        "inference",
        "--context",
        RUNNER_CTX,
    ]
    denied = kubectl(*can_i, check=False)
    assert denied.returncode == 1 and denied.stdout.strip() == "no"
    grant_docs = [
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "kubectl-scaler"},
            "rules": [
                {
                    "apiGroups": ["apps"],
                    "resources": ["deployments/scale"],
                    "verbs": ["update"],
                    "resourceNames": ["web"],
                }
            ],
        },
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "kubectl-scaler"},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "kubectl-scaler"},
            "subjects": [{"apiGroup": RBAC, "kind": "User", "name": "gameday-runner"}],
        },
    ]
    cleanup += [("ClusterRole", "kubectl-scaler"), ("ClusterRoleBinding", "kubectl-scaler")]
    kubectl("apply", "--context", "lab-admin", "-f", "-", stdin=yaml.safe_dump_all(grant_docs))
    assert kubectl(*can_i).stdout.strip() == "yes"
    other = kubectl(
        "auth",
        "can-i",
        "update",
        "deployments.apps/db",
        "--subresource",
        "scale",
        "-n",
        "inference",
        "--context",
        RUNNER_CTX,
        check=False,
    )
    assert other.stdout.strip() == "no"
    plain = kubectl("auth", "can-i", "update", "deployments.apps/web", "--context", RUNNER_CTX, check=False)
    assert plain.stdout.strip() == "no"
    listing = kubectl("get", "clusterrolebindings", "kubectl-scaler", "--context", "lab-admin").stdout
    assert "ClusterRole/kubectl-scaler" in listing


def test_kubectl_can_i_namespaced_and_non_resource(
    kubectl: Kubectl, rbac: client.RbacAuthorizationV1Api, namespace: str, cleanup: list[tuple[str, str]]
) -> None:
    """can-i honours the namespace of a RoleBinding and nonResourceURLs granted by a ClusterRoleBinding."""
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="pod-deleter"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["delete"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="storm"),
            role_ref=client.V1RoleRef(api_group=RBAC, kind="Role", name="pod-deleter"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="storm", namespace="default")],
        ),
    )
    assert (
        kubectl("auth", "can-i", "delete", "pods", "-n", namespace, "--context", STORM_CTX).stdout.strip()
        == "yes"
    )
    assert (
        kubectl(
            "auth", "can-i", "delete", "pods", "-n", "default", "--context", STORM_CTX, check=False
        ).stdout.strip()
        == "no"
    )
    grant(
        rbac,
        cleanup,
        "storm-healthz",
        client.V1PolicyRule(verbs=["get"], non_resource_urls=["/healthz/*"]),
        client.RbacV1Subject(kind="ServiceAccount", name="storm", namespace="default"),
    )
    assert kubectl("auth", "can-i", "get", "/healthz/etcd", "--context", STORM_CTX).stdout.strip() == "yes"
    assert (
        kubectl("auth", "can-i", "get", "/metrics", "--context", STORM_CTX, check=False).stdout.strip()
        == "no"
    )


def test_discovery_lists_rbac_and_access_reviews(kubectl: Kubectl) -> None:
    """kubectl api-resources shows the four RBAC kinds and both access reviews."""
    out = kubectl("api-resources", "--api-group", RBAC, "-o", "name").stdout.split()
    assert sorted(out) == sorted(
        f"{p}.{RBAC}" for p in ("roles", "rolebindings", "clusterroles", "clusterrolebindings")
    )
    reviews = kubectl("api-resources", "--api-group", "authorization.k8s.io", "-o", "name").stdout.split()
    assert {
        "subjectaccessreviews.authorization.k8s.io",
        "selfsubjectaccessreviews.authorization.k8s.io",
    } <= set(reviews)


def test_lab_bootstrap_grants_the_runner_the_agents(
    api: RunningApiServer, authz: client.AuthorizationV1Api, rbac: client.RbacAuthorizationV1Api
) -> None:
    """lab/manifests' RBAC file, applied the way `lab up` applies it, lets gameday-runner use every node's agent."""
    path = Path(__file__).resolve().parents[3] / "lab" / "manifests" / "30-gameday-agents-rbac.yaml"
    docs = load_documents([path])
    rest = Rest(api.url, api.admin_token)
    try:
        for doc in docs:
            apply(rest, doc)
        groups = ["gameday:runners", "system:authenticated"]
        for verb in ("create", "update", "delete", "get", "list"):
            assert sar(
                authz, "gameday-runner", groups, verb, "agentfaults", group="gameday.dev", name="gpu-7"
            ).allowed
        assert not sar(
            authz, "mallory", [], "create", "agentfaults", group="gameday.dev", name="gpu-7"
        ).allowed
    finally:
        rest.close()
        for doc in docs:
            name = doc["metadata"]["name"]
            if doc["kind"] == "ClusterRole":
                rbac.delete_cluster_role(name)
            else:
                rbac.delete_cluster_role_binding(name)
