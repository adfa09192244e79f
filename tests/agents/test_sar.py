"""Agent authorisation by Kubernetes SubjectAccessReview: a real kube-apiserver holds the RBAC objects, a real
agent process asks it about every call (``--authorize sar`` / ``any`` / ``allowlist``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes import client

from agents.access import verb_for
from agents.testing import AgentProcess, running_agent
from lab.control import plane
from lab.testing import LabHandle, running_api
from tests.agents.conftest import AGENT_SA, MANIFESTS, call, install_agent_rbac, xid
from tests.conftest import poll

NODE = "gpu-1"
TRUDY = "trudy"
VERA = "vera"  # one identity per test that grants: the agent's positive cache is per identity and verb
NINA = "nina"
OPS = "ops-bot"
CI_SA = ("ci", "deployer")
CI_USER = "system:serviceaccount:ci:deployer"
RUNNER_SA = "system:serviceaccount:gameday:gameday-runner"  # on the shipped allow-list (10-agent-rbac.yaml)
ALL_VERBS = ["create", "update", "delete", "get", "list"]


@pytest.fixture(scope="module")
def sar_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    """A real kube-apiserver of its own (its RBAC objects must not leak into other agent tests)."""
    with running_api(tmp_path_factory.mktemp("sar-api"),
                     identities={TRUDY: ["devs"], VERA: [], NINA: [], OPS: ["gameday:operators"]}) as handle:
        install_agent_rbac(handle)
        yield handle


@pytest.fixture(scope="module")
def rbac(sar_api: LabHandle) -> Iterator[client.RbacAuthorizationV1Api]:
    """The official client's RBAC API, as admin."""
    api_client = sar_api.client()
    try:
        yield client.RbacAuthorizationV1Api(api_client)
    finally:
        api_client.close()


@pytest.fixture(scope="module")
def sar_agent(tmp_path_factory: pytest.TempPathFactory, sar_api: LabHandle) -> Iterator[AgentProcess]:
    """An agent in ``--authorize sar`` mode with a 1 s auth cache."""
    with running_agent(tmp_path_factory.mktemp("sar-agent"), NODE, sar_api.url, sar_api.token_for(AGENT_SA),
                       authorize="sar", extra_args=["--auth-cache-seconds", "1"], api_ca_file=sar_api.ca_file) as agent:
        yield agent


@contextmanager
def granted(rbac: client.RbacAuthorizationV1Api, name: str, subject: client.RbacV1Subject,
            verbs: list[str] | None = None, resource_names: list[str] | None = None) -> Iterator[None]:
    """A ClusterRole with agentfaults verbs bound to ``subject`` for the block; both deleted afterwards."""
    rule = client.V1PolicyRule(api_groups=["gameday.dev"], resources=["agentfaults"], verbs=verbs or ALL_VERBS,
                               resource_names=resource_names)
    rbac.create_cluster_role(client.V1ClusterRole(metadata=client.V1ObjectMeta(name=name), rules=[rule]))
    try:
        rbac.create_cluster_role_binding(client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name=name), subjects=[subject],
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=name)))
        try:
            yield
        finally:
            rbac.delete_cluster_role_binding(name)
    finally:
        rbac.delete_cluster_role(name)


def user(name: str) -> client.RbacV1Subject:
    """A User subject."""
    return client.RbacV1Subject(kind="User", name=name, api_group="rbac.authorization.k8s.io")


def kmsg(agent: AgentProcess) -> str:
    """What the agent has written to its stand-in kernel log so far ("" when nothing)."""
    return agent.kmsg_path.read_text() if agent.kmsg_path.exists() else ""


def faults(agent: AgentProcess, api: LabHandle) -> list[object]:
    """The agent's active faults, read as the admin (system:masters: every SubjectAccessReview allows it)."""
    status, body = call(agent.url, "GET", "/v1/faults", api.admin_token)
    assert status == 200, body
    return list(body["faults"])


def test_verbs_follow_the_call() -> None:
    """Inject is create, renew update, revert(-all) delete, listing list and reading one fault get."""
    assert verb_for("POST", "/v1/faults") == "create"
    assert verb_for("POST", "/v1/faults/f-1/renew") == "update"
    assert verb_for("DELETE", "/v1/faults/f-1") == verb_for("DELETE", "/v1/faults") == "delete"
    assert verb_for("GET", "/v1/faults") == verb_for("GET", "/v1/devices") == "list"
    assert verb_for("GET", "/v1/faults/f-1") == "get"


def test_ungranted_identity_gets_403_and_nothing_changes(sar_agent: AgentProcess, sar_api: LabHandle) -> None:
    """A valid token of an identity without an RBAC grant is refused (naming it and the verb) and injects nothing."""
    before = kmsg(sar_agent)
    status, body = call(sar_agent.url, "POST", "/v1/faults", sar_api.token_for(TRUDY), xid())
    assert status == 403 and body["error"] == "forbidden"
    assert TRUDY in body["message"] and "create" in body["message"] and "agentfaults.gameday.dev" in body["message"]
    assert faults(sar_agent, sar_api) == [] and kmsg(sar_agent) == before


def test_allow_listed_runner_is_not_enough_in_sar_mode(sar_agent: AgentProcess, sar_api: LabHandle) -> None:
    """In sar mode the runner's service account, on the shipped allow-list but without an RBAC grant, is refused."""
    status, body = call(sar_agent.url, "GET", "/v1/faults", sar_api.token_for(RUNNER_SA))
    assert status == 403 and RUNNER_SA in body["message"] and "list" in body["message"]


def test_shipped_runner_rbac_grants_every_agent_verb(sar_agent: AgentProcess, sar_api: LabHandle,
                                                     rbac: client.RbacAuthorizationV1Api) -> None:
    """agents/manifests/runner-rbac.yaml lets the runner's service account inject, read, renew, list and revert."""
    token = sar_api.token_for(RUNNER_SA)
    assert call(sar_agent.url, "POST", "/v1/faults", token, xid("f-shipped"))[0] == 403
    applied = sar_api.kubectl("apply", "-f", str(MANIFESTS / "runner-rbac.yaml"), context="lab-admin")
    assert applied.returncode == 0, applied.stderr
    try:
        status, body = call(sar_agent.url, "POST", "/v1/faults", token, xid("f-shipped"))
        assert status == 201, body
        assert call(sar_agent.url, "GET", "/v1/faults/f-shipped", token)[0] == 200
        assert call(sar_agent.url, "POST", "/v1/faults/f-shipped/renew", token, {"ttl_seconds": 30})[0] == 200
        assert [f["fault_id"] for f in call(sar_agent.url, "GET", "/v1/faults", token)[1]["faults"]] == ["f-shipped"]
        assert call(sar_agent.url, "DELETE", "/v1/faults/f-shipped", token)[0] == 200
    finally:
        rbac.delete_cluster_role_binding("gameday-runner")  # the service account stays: its token keeps working
        rbac.delete_cluster_role("gameday-runner")
    poll(lambda: call(sar_agent.url, "DELETE", "/v1/faults/f-shipped", token)[0] == 403, 10,
         "the shipped grant's removal to take effect")
    assert faults(sar_agent, sar_api) == []


def test_grant_then_revoke(sar_agent: AgentProcess, sar_api: LabHandle,
                           rbac: client.RbacAuthorizationV1Api) -> None:
    """A ClusterRoleBinding created through the API lets the same call succeed; deleting it refuses again after the cache."""
    token = sar_api.token_for(TRUDY)
    assert call(sar_agent.url, "POST", "/v1/faults", token, xid("f-grant"))[0] == 403
    with granted(rbac, "trudy-agentfaults", user(TRUDY)):
        status, body = call(sar_agent.url, "POST", "/v1/faults", token, xid("f-grant"))
        assert status == 201, body
        assert "name=gameday-" in kmsg(sar_agent) and len(faults(sar_agent, sar_api)) == 1
        assert call(sar_agent.url, "DELETE", "/v1/faults/f-grant", token)[0] == 200
    # The last verb used under the grant was delete (revert is idempotent): once it is refused, every
    # earlier cached answer has expired too.
    poll(lambda: call(sar_agent.url, "DELETE", "/v1/faults/f-grant", token)[0] == 403, 10,
         "the revoked grant to stop working")
    before = kmsg(sar_agent)
    status, _ = call(sar_agent.url, "POST", "/v1/faults", token, xid("f-after"))
    assert status == 403 and faults(sar_agent, sar_api) == [] and kmsg(sar_agent) == before


def test_grant_is_per_verb(sar_agent: AgentProcess, sar_api: LabHandle,
                           rbac: client.RbacAuthorizationV1Api) -> None:
    """A grant of list only lets the identity list faults but not inject them."""
    token = sar_api.token_for(VERA)
    with granted(rbac, "vera-read", user(VERA), verbs=["list", "get"]):
        assert call(sar_agent.url, "GET", "/v1/faults", token)[0] == 200
        status, body = call(sar_agent.url, "POST", "/v1/faults", token, xid("f-ro"))
        assert status == 403 and "may not create" in body["message"]
    assert faults(sar_agent, sar_api) == []


def test_grant_limited_to_other_nodes(sar_agent: AgentProcess, sar_api: LabHandle,
                                      rbac: client.RbacAuthorizationV1Api) -> None:
    """resourceNames naming another node do not open this node's agent."""
    with granted(rbac, "nina-other-node", user(NINA), resource_names=["gpu-9"]):
        assert call(sar_agent.url, "GET", "/v1/faults", sar_api.token_for(NINA))[0] == 403
    with granted(rbac, "nina-this-node", user(NINA), resource_names=[NODE]):
        assert call(sar_agent.url, "GET", "/v1/faults", sar_api.token_for(NINA))[0] == 200


def test_group_and_service_account_subjects(sar_agent: AgentProcess, sar_api: LabHandle,
                                            rbac: client.RbacAuthorizationV1Api) -> None:
    """Grants to a Group and to a ServiceAccount reach the identities TokenReview reports for them."""
    group = client.RbacV1Subject(kind="Group", name="gameday:operators", api_group="rbac.authorization.k8s.io")
    with granted(rbac, "operators", group):
        assert call(sar_agent.url, "GET", "/v1/faults", sar_api.token_for(OPS))[0] == 200
    sa = client.RbacV1Subject(kind="ServiceAccount", name=CI_SA[1], namespace=CI_SA[0])
    with granted(rbac, "ci-deployer", sa):
        assert call(sar_agent.url, "GET", "/v1/faults", sar_api.token_for(CI_USER))[0] == 200


def test_any_mode_accepts_allow_list_or_rbac(tmp_path: Path, sar_api: LabHandle,
                                             rbac: client.RbacAuthorizationV1Api) -> None:
    """In any mode the allow-listed runner passes without RBAC, an RBAC-granted identity passes, others get 403."""
    with running_agent(tmp_path, NODE, sar_api.url, sar_api.token_for(AGENT_SA), authorize="any",
                       api_ca_file=sar_api.ca_file) as agent:
        assert call(agent.url, "GET", "/v1/faults", sar_api.runner_token)[0] == 200
        status, body = call(agent.url, "GET", "/v1/faults", sar_api.token_for(TRUDY))
        assert status == 403 and "allow-list" in body["message"]
        with granted(rbac, "trudy-any", user(TRUDY)):
            assert call(agent.url, "GET", "/v1/faults", sar_api.token_for(TRUDY))[0] == 200


def test_allowlist_mode_ignores_rbac(tmp_path: Path, sar_api: LabHandle,
                                     rbac: client.RbacAuthorizationV1Api) -> None:
    """In allowlist mode an RBAC grant does not let an unlisted identity in."""
    with running_agent(tmp_path, NODE, sar_api.url, sar_api.token_for(AGENT_SA), authorize="allowlist",
                       api_ca_file=sar_api.ca_file) as agent, \
            granted(rbac, "trudy-allowlist", user(TRUDY)):
        assert call(agent.url, "GET", "/v1/faults", sar_api.token_for(TRUDY))[0] == 403
        assert call(agent.url, "GET", "/v1/faults", sar_api.runner_token)[0] == 200


def test_sar_unreachable_is_denied(tmp_path: Path) -> None:
    """With the identity still cached but the API server gone, a call needing a new SubjectAccessReview fails closed."""
    with running_api(tmp_path / "api", identities={TRUDY: []}) as api:
        install_agent_rbac(api)
        token = api.token_for(TRUDY)
        api_client = api.client()
        try:
            rbac_api = client.RbacAuthorizationV1Api(api_client)
            rbac_api.create_cluster_role(client.V1ClusterRole(metadata=client.V1ObjectMeta(name="read"), rules=[
                client.V1PolicyRule(api_groups=["gameday.dev"], resources=["agentfaults"], verbs=["list"])]))
            rbac_api.create_cluster_role_binding(client.V1ClusterRoleBinding(
                metadata=client.V1ObjectMeta(name="read"), subjects=[user(TRUDY)],
                role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="read")))
        finally:
            api_client.close()
        with running_agent(tmp_path, NODE, api.url, api.token_for(AGENT_SA), authorize="sar",
                           extra_args=["--auth-cache-seconds", "60"], api_ca_file=api.ca_file) as agent:
            assert call(agent.url, "GET", "/v1/faults", token)[0] == 200
            plane.down(api.state_dir)  # etcd and kube-apiserver gone (its supervisor with it: nothing restarts it)
            status, body = call(agent.url, "POST", "/v1/faults", token, xid("f-down"))
            assert status == 503 and body["error"] == "auth-unavailable" and "SubjectAccessReview" in body["message"]
            assert not agent.kmsg_path.exists()
