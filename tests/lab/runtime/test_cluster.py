"""Tests for lab.runtime.cluster's pod identities on the real plane: a pod speaks with its own service account's
TokenRequest token, never an admin one, and the real API server's APF classifies it as that account."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from tests.conftest import poll
from tests.lab.runtime.conftest import RuntimeLab

PROGRAM = "lab.runtime.testprograms:WhoAmIProgram"


def _whoami_pod(out: Path, sa: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "lab/program",
                                            "env": [{"name": "OUT_FILE", "value": str(out)}]}]}
    if sa:
        spec["serviceAccountName"] = sa
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "whoami", "annotations": {"lab.gameday/program": PROGRAM}}, "spec": spec}


def _levels(rt_lab: RuntimeLab) -> dict[str, str]:
    """uid -> name of every FlowSchema and PriorityLevelConfiguration."""
    out: dict[str, str] = {}
    for plural in ("flowschemas", "prioritylevelconfigurations"):
        resp = httpx.get(f"{rt_lab.handle.url}/apis/flowcontrol.apiserver.k8s.io/v1/{plural}",
                         headers={"Authorization": f"Bearer {rt_lab.handle.admin_token}"},
                         verify=ssl.create_default_context(cafile=rt_lab.handle.ca_file), timeout=10)
        resp.raise_for_status()
        out |= {i["metadata"]["uid"]: i["metadata"]["name"] for i in resp.json()["items"]}
    return out


@pytest.mark.parametrize(("in_kube_system", "level", "schema"), [
    (False, "workload-low", "service-accounts"),
    (True, "workload-high", "kube-system-service-accounts"),
])
def test_pod_runs_as_its_service_account_and_apf_classifies_it(
    rt_lab: RuntimeLab, tmp_path: Path, in_kube_system: bool, level: str, schema: str,
) -> None:
    """A pod in a fresh namespace runs as <ns>:default at workload-low (a kube-system account: workload-high); its
    token is not the admin's and TokenReview names its service account."""
    ns = "kube-system" if in_kube_system else rt_lab.namespace()
    sa = "whoami-test" if in_kube_system else None
    if sa:
        rt_lab.core.create_namespaced_service_account(ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=sa)))
    out = tmp_path / "whoami.json"
    rt_lab.core.create_namespaced_pod(ns, _whoami_pod(out, sa))
    try:
        answer = poll(lambda: out.exists() and json.loads(out.read_text()), 60, "the pod's SelfSubjectReview")
        username = f"system:serviceaccount:{ns}:{sa or 'default'}"
        assert answer["status"] == 201 and answer["user"]["username"] == username
        assert answer["token"] != rt_lab.handle.admin_token and "system:masters" not in answer["user"]["groups"]
        names = _levels(rt_lab)
        assert names[answer["priority_level_uid"]] == level and names[answer["flow_schema_uid"]] == schema
        review = client.AuthenticationV1Api(rt_lab.core.api_client).create_token_review(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": answer["token"]}})
        assert review.status.authenticated and review.status.user.username == username
    finally:
        rt_lab.core.delete_namespaced_pod("whoami", ns, grace_period_seconds=0)
        if sa:
            rt_lab.core.delete_namespaced_service_account(sa, ns)
