"""The agent's HTTP API: authentication (TokenReview + allow-list), validation, and that refusals change nothing."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from agents.testing import AgentProcess, running_agent
from lab.testing import LabHandle
from tests.agents.conftest import AGENT_SA, OUTSIDER, call, degrade, xid
from tests.conftest import poll

REVOKED = ("gameday", "revoked-runner")


def _snapshot(agent: AgentProcess) -> dict[str, Any]:
    """Everything a refused request must leave untouched."""
    return {
        "state": agent.state_file.read_text() if agent.state_file.exists() else None,
        "kmsg": agent.kmsg_path.read_text() if agent.kmsg_path.exists() else None,
        "nvml": agent.nvml_state.read_text(),
    }


def _held(agent: AgentProcess, token: str) -> list[Any]:
    status, body = call(agent.url, "GET", "/v1/faults", token)
    assert status == 200
    return list(body["faults"])


def test_missing_token_is_401_and_changes_nothing(agent: AgentProcess, api: LabHandle) -> None:
    """An inject without a bearer token gets 401 and leaves state, kernel log and GPUs as they were."""
    before = _snapshot(agent)
    status, body = call(agent.url, "POST", "/v1/faults", None, xid())
    assert status == 401 and body["error"] == "unauthenticated" and "missing bearer token" in body["message"]
    assert _snapshot(agent) == before and _held(agent, api.runner_token) == []


def test_unknown_token_is_401_and_changes_nothing(agent: AgentProcess, api: LabHandle, foreign: str) -> None:
    """A token the cluster does not know (foreign: from another cluster) gets 401 and changes nothing."""
    before = _snapshot(agent)
    status, body = call(agent.url, "POST", "/v1/faults", foreign, degrade())
    assert status == 401 and "TokenReview" in body["message"]
    assert _snapshot(agent) == before and _held(agent, api.runner_token) == []


def test_identity_not_allowed_is_403_and_changes_nothing(agent: AgentProcess, api: LabHandle) -> None:
    """A valid token of an identity that is not on the allow-list gets 403 naming the identity."""
    before = _snapshot(agent)
    status, body = call(agent.url, "POST", "/v1/faults", api.token_for(OUTSIDER), xid())
    assert status == 403 and body["error"] == "forbidden" and OUTSIDER in body["message"]
    status, _ = call(agent.url, "DELETE", "/v1/faults", api.token_for(OUTSIDER))
    assert status == 403
    assert _snapshot(agent) == before and _held(agent, api.runner_token) == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (xid(code=9999), "XID 9999 is not an allowed code"),
        (xid(ttl=-5), "ttl_seconds"),
        (xid(ttl=100_000), "ttl_seconds"),
        (xid(ttl=500), "exceeds this agent's maximum"),
        ({"fault_id": "p", "run_id": "r", "ttl_seconds": 10,
          "params": {"kind": "nccl-partition", "peers": ["10.0.0.0/8"]}}, "outside the allowed CIDRs"),
        ({"fault_id": "p", "run_id": "r", "ttl_seconds": 10,
          "params": {"kind": "nccl-partition", "peers": ["192.0.2.2"], "interface": "eth0"}}, "interface 'eth0'"),
        ({"fault_id": "p", "run_id": "r", "ttl_seconds": 10,
          "params": {"kind": "nccl-partition", "peers": ["not-an-ip"]}}, "not an IP address"),
        (degrade(gpu_index=7), "gpu_index 7 is out of range"),
        ({**xid(), "surprise": 1}, "Extra inputs are not permitted"),
        (xid(fault_id="bad id/../x"), "fault_id"),
    ],
)
def test_out_of_range_requests_are_422_and_change_nothing(agent: AgentProcess, api: LabHandle,
                                                          body: dict[str, Any], needle: str) -> None:
    """Requests outside the protocol or this agent's limits get 422 with a message that says why."""
    before = _snapshot(agent)
    status, err = call(agent.url, "POST", "/v1/faults", api.runner_token, body)
    assert status == 422, err
    assert err["error"] == "invalid" and needle in err["message"]
    assert _snapshot(agent) == before and _held(agent, api.runner_token) == []


def test_malformed_json_is_400(agent: AgentProcess, api: LabHandle) -> None:
    """A body that is not JSON gets 400 and changes nothing."""
    before = _snapshot(agent)
    status, err = call(agent.url, "POST", "/v1/faults", api.runner_token, raw=b'{"fault_id": ')
    assert status == 400 and "not valid JSON" in err["message"]
    assert _snapshot(agent) == before


def test_unauthenticated_caller_learns_nothing_about_validation(agent: AgentProcess) -> None:
    """Authentication comes first: a malformed request without a token is still just 401."""
    status, _ = call(agent.url, "POST", "/v1/faults", None, raw=b"garbage")
    assert status == 401


def test_health_metrics_and_devices(agent: AgentProcess, api: LabHandle) -> None:
    """/healthz and /metrics answer without a token; /v1/devices lists the fake GPUs with PCI addresses."""
    status, health = call(agent.url, "GET", "/healthz")
    assert status == 200 and health["node"] == "gpu-1" and health["nvml"] == "fake"
    status, devs = call(agent.url, "GET", "/v1/devices", api.runner_token)
    assert status == 200 and devs["backend"] == "fake"
    assert [d["kernel_pci"] for d in devs["devices"]] == ["0000:18:00", "0000:2a:00"]
    import httpx

    text = httpx.get(agent.url + "/metrics", timeout=5).raise_for_status().text
    assert 'gameday_agent_active_faults{kind="gpu-xid"} 0.0' in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_revoked_token_is_401(tmp_path: Path, api: LabHandle) -> None:
    """A service-account token that worked, then was revoked by deleting its account, gets 401 (positive cache off)."""
    namespace, name = REVOKED
    user = f"system:serviceaccount:{namespace}:{name}"
    token = api.token_for(user)
    with running_agent(tmp_path, "gpu-1", api.url, api.token_for(AGENT_SA), allow_users=[user],
                       extra_args=["--auth-cache-seconds", "0"], api_ca_file=api.ca_file) as agent:
        assert call(agent.url, "GET", "/v1/faults", token)[0] == 200
        with api.client() as admin:
            client.CoreV1Api(admin).delete_namespaced_service_account(name, namespace)
        # kube-apiserver keeps a successful token authentication for 10 s: a read shows when it has let go
        poll(lambda: call(agent.url, "GET", "/v1/faults", token)[0] == 401, 30, "the revoked token to be refused")
        status, body = call(agent.url, "POST", "/v1/faults", token, xid())
        assert status == 401 and "invalid bearer token" in body["message"], body
        assert not agent.kmsg_path.exists()


def test_tokenreview_unreachable_fails_closed(tmp_path: Path, api: LabHandle) -> None:
    """When the API server cannot be reached, the agent answers 503 and applies nothing."""
    with running_agent(tmp_path, "gpu-1", f"http://127.0.0.1:{_free_port()}", "x") as agent:
        status, body = call(agent.url, "POST", "/v1/faults", api.runner_token, xid())
        assert status == 503 and body["error"] == "auth-unavailable"
        assert not agent.kmsg_path.exists()


def test_tls_when_certificates_are_given(tmp_path: Path, api: LabHandle) -> None:
    """With --tls-cert/--tls-key the agent serves HTTPS that a client trusting the CA can call."""
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    with running_agent(tmp_path, "gpu-1", api.url, api.token_for(AGENT_SA),
                       extra_args=["--tls-cert", str(cert), "--tls-key", str(key)], api_ca_file=api.ca_file) as agent:
        assert agent.url.startswith("https://")
        status, body = call(agent.url, "GET", "/v1/faults", api.runner_token, cafile=str(cert))
        assert status == 200 and body["faults"] == []
