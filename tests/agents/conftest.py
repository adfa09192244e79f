"""Fixtures for the agent tests: one real kube-apiserver (TokenReview, SubjectAccessReview), agents as real
processes, raw HTTP calls."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from agents.testing import AgentProcess, running_agent
from lab.testing import LabHandle, running_api

AGENT_SA = "system:serviceaccount:gameday:gameday-agent"
OUTSIDER = "mallory"
MANIFESTS = Path(__file__).resolve().parents[2] / "agents" / "manifests"


def install_agent_rbac(api: LabHandle) -> None:
    """Apply the shipped namespace and agent RBAC (TokenReview + SubjectAccessReview for gameday/gameday-agent)."""
    done = api.kubectl("apply", "-f", str(MANIFESTS / "00-namespace.yaml"), "-f", str(MANIFESTS / "10-agent-rbac.yaml"),
                       context="lab-admin")
    assert done.returncode == 0, done.stderr


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def foreign_token(like: str) -> str:
    """``like`` (a service-account JWT of this cluster) re-signed with a fresh ES256 key: a well-formed token with the
    same issuer and claims, minted by some other cluster."""
    header, payload, _ = like.split(".")
    signed = f"{header}.{payload}".encode()
    der = ec.generate_private_key(ec.SECP256R1()).sign(signed, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{header}.{payload}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def call(url: str, method: str, path: str, token: str | None = None, body: Any = None,
         raw: bytes | None = None, cafile: str | None = None) -> tuple[int, Any]:
    """One HTTP call to an agent; returns (status, decoded JSON body)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    verify = ssl.create_default_context(cafile=cafile) if cafile is not None else True
    resp = httpx.request(method, url + path, content=data, headers=headers, timeout=15, verify=verify)
    return resp.status_code, json.loads(resp.content or b"null")


def xid(fault_id: str = "f-xid", ttl: float = 30, **params: Any) -> dict[str, Any]:
    """An inject body for gpu-xid."""
    return {"fault_id": fault_id, "run_id": "run-1", "ttl_seconds": ttl, "params": {"kind": "gpu-xid", "code": 79, **params}}


def degrade(fault_id: str = "f-deg", ttl: float = 30, **params: Any) -> dict[str, Any]:
    """An inject body for gpu-degrade."""
    return {"fault_id": fault_id, "run_id": "run-1", "ttl_seconds": ttl,
            "params": {"kind": "gpu-degrade", "sm_clock_mhz": 600, **params}}


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    """A real kube-apiserver answering the agents' TokenReviews (runner, agent service account, an outsider)."""
    with running_api(tmp_path_factory.mktemp("api"), identities={OUTSIDER: ["devs"]}) as handle:
        install_agent_rbac(handle)
        yield handle


@pytest.fixture(scope="session")
def foreign(api: LabHandle) -> str:
    """A well-formed service-account token this cluster did not sign."""
    return foreign_token(api.token_for(AGENT_SA))


@pytest.fixture(scope="module")
def module_agent(tmp_path_factory: pytest.TempPathFactory, api: LabHandle) -> Iterator[AgentProcess]:
    """An agent with two fake GPUs and a file as its kernel log, shared by a module's tests."""
    with running_agent(tmp_path_factory.mktemp("agent"), "gpu-1", api.url, api.token_for(AGENT_SA), nvml="fake",
                       gpu_count=2, extra_args=["--allow-cidr", "192.0.2.0/24", "--max-ttl", "120"],
                       api_ca_file=api.ca_file) as proc:
        yield proc


@pytest.fixture
def agent(module_agent: AgentProcess, api: LabHandle) -> Iterator[AgentProcess]:
    """The module's agent, running and holding nothing before and after each test."""
    if module_agent.proc is None or module_agent.proc.poll() is not None:
        module_agent.start()
    assert call(module_agent.url, "GET", "/v1/faults", api.runner_token)[1]["faults"] == []
    yield module_agent
    if module_agent.proc is None or module_agent.proc.poll() is not None:
        module_agent.start()
    call(module_agent.url, "DELETE", "/v1/faults", api.runner_token)


def metric(agent: AgentProcess, line_prefix: str) -> float:
    """The value of one exposition line of the agent's /metrics (0 when absent)."""
    for line in httpx.get(agent.url + "/metrics", timeout=5).raise_for_status().text.splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
