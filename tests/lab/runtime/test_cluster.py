"""Tests for lab.runtime.cluster's pod identities: signed service-account tokens, never admin, classified by APF."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client

from lab.apiserver.users import sa_token, verify_sa_token
from lab.runtime.cluster import Cluster
from lab.runtime.testing import wait_for

PROGRAM = "lab.runtime.testprograms:WhoAmIProgram"


def test_signed_tokens_verify_only_with_the_right_secret_and_mac() -> None:
    """A signed token names its account; a wrong secret, a forged MAC or another account's MAC is refused."""
    token = sa_token(b"s3cret", "team-a", "builder.v2")
    user = verify_sa_token(b"s3cret", token)
    assert user is not None and user.username == "system:serviceaccount:team-a:builder.v2"
    assert set(user.groups) == {"system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"}
    assert verify_sa_token(b"other", token) is None
    assert verify_sa_token(b"s3cret", token[:-1] + ("0" if token[-1] != "0" else "1")) is None
    forged = token.replace("team-a", "kube-system")
    assert verify_sa_token(b"s3cret", forged) is None


def test_sa_token_without_a_secret_never_falls_back_to_admin() -> None:
    """With no signing secret and no token for the account, a pod gets no token rather than the admin one."""
    cluster = Cluster.__new__(Cluster)  # only the token table matters here: no sessions
    cluster.tokens = {"admin": "ADMIN-TOKEN", "system:serviceaccount:ns1:default": "SA-TOKEN"}
    cluster.sa_secret = None
    assert cluster.sa_token("ns1", "builder") == "SA-TOKEN"
    assert cluster.sa_token("elsewhere", "default") == ""
    cluster.sa_secret = b"k"
    assert cluster.sa_token("elsewhere", "x") == sa_token(b"k", "elsewhere", "x")


def _whoami_pod(ns: str, out: Path, sa: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "lab/program",
                                            "env": [{"name": "OUT_FILE", "value": str(out)}]}]}
    if sa:
        spec["serviceAccountName"] = sa
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "whoami", "annotations": {"lab.gameday/program": PROGRAM}}, "spec": spec}


def _levels(rt_lab: Any) -> dict[str, str]:
    """uid -> name of every FlowSchema and PriorityLevelConfiguration."""
    out: dict[str, str] = {}
    for plural in ("flowschemas", "prioritylevelconfigurations"):
        resp = requests.get(f"{rt_lab.api.url}/apis/flowcontrol.apiserver.k8s.io/v1/{plural}",
                            headers={"Authorization": f"Bearer {rt_lab.api.admin_token}"}, timeout=10)
        out |= {i["metadata"]["uid"]: i["metadata"]["name"] for i in resp.json()["items"]}
    return out


@pytest.mark.parametrize(("in_kube_system", "level", "schema"), [
    (False, "workload-low", "service-accounts"),
    (True, "workload-high", "kube-system-service-accounts"),
])
def test_pod_runs_as_its_service_account_and_apf_classifies_it(
    rt_lab: Any, tmp_path: Path, in_kube_system: bool, level: str, schema: str,
) -> None:
    """A pod in a fresh namespace runs as <ns>:default at workload-low (kube-system accounts: workload-high);
    TokenReview names its service account."""
    ns = "kube-system" if in_kube_system else rt_lab.namespace()
    sa = "whoami-test" if in_kube_system else None
    out = tmp_path / "whoami.json"
    rt_lab.core.create_namespaced_pod(ns, _whoami_pod(ns, out, sa))
    try:
        answer = wait_for(lambda: out.exists() and json.loads(out.read_text()), what="the pod's SelfSubjectReview")
        username = f"system:serviceaccount:{ns}:{sa or 'default'}"
        assert answer["status"] == 201 and answer["user"]["username"] == username
        assert answer["token"] != rt_lab.api.admin_token and "system:masters" not in answer["user"]["groups"]
        names = _levels(rt_lab)
        assert names[answer["priority_level_uid"]] == level and names[answer["flow_schema_uid"]] == schema
        with rt_lab.api.client() as api:
            review = client.AuthenticationV1Api(api).create_token_review(
                {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": answer["token"]}})
        assert review.status.authenticated and review.status.user.username == username
        assert verify_sa_token(rt_lab.sa_secret, answer["token"]) is not None
    finally:
        rt_lab.core.delete_namespaced_pod("whoami", ns)
