"""Audience-bound agent tokens: an agent started with ``--audience`` accepts only tokens the real API server issued
for that audience (TokenRequest), and a runner given ``agent_audience`` asks for one instead of sending its own."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from agents.testing import AgentProcess, running_agent
from lab.testing import LabHandle
from tasks.agent_client import AgentClient, AgentUnreachable, AudienceToken
from tasks.cluster import Cluster
from tasks.errors import AgentError, TargetError
from tasks.settings import Settings
from tests.agents.conftest import AGENT_SA, call

AUDIENCE = "gameday-agent"
RUNNER_SA = ("gameday", "gameday-runner")
RUNNER_SA_USER = "system:serviceaccount:gameday:gameday-runner"


@pytest.fixture(scope="module")
def audience_agent(tmp_path_factory: pytest.TempPathFactory, api: LabHandle) -> Iterator[AgentProcess]:
    """An agent that accepts only tokens issued for gameday-agent, the runner's account and user on its list."""
    with running_agent(tmp_path_factory.mktemp("audience-agent"), "gpu-9", api.url, api.token_for(AGENT_SA),
                       allow_users=[RUNNER_SA_USER, "gameday-runner"], extra_args=["--audience", AUDIENCE],
                       api_ca_file=api.ca_file) as proc:
        yield proc


def _issued_for(api: LabHandle, audience: str) -> str:
    """A token of the runner's service account issued for ``audience`` (the account exists: request_token made it)."""
    api.request_token(*RUNNER_SA)
    with api.client() as c:
        answer = client.CoreV1Api(c).create_namespaced_service_account_token(
            RUNNER_SA[1], RUNNER_SA[0], client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(audiences=[audience], expiration_seconds=600)))
    return str(answer.status.token)


def test_only_a_token_issued_for_the_agents_audience_is_accepted(audience_agent: AgentProcess,
                                                                 api: LabHandle) -> None:
    """A token issued for gameday-agent is served; the same account's API-server token, the runner's own static
    token and a token for another audience get 401 naming the audience the agent wants."""
    status, body = call(audience_agent.url, "GET", "/v1/faults", _issued_for(api, AUDIENCE))
    assert status == 200 and body["faults"] == [], body
    for token in (api.request_token(*RUNNER_SA), api.runner_token, _issued_for(api, "vault")):
        status, body = call(audience_agent.url, "GET", "/v1/faults", token)
        assert status == 401 and AUDIENCE in str(body), (status, body)


def test_the_runner_sends_a_token_issued_for_the_agents_audience(audience_agent: AgentProcess,
                                                                 api: LabHandle) -> None:
    """By default the runner's agent client speaks with a TokenRequest token of its service account for
    gameday-agent (not its own credential), which the agent accepts; the token is reused while it has time left."""
    cluster = Cluster(api.client(), user="lab-admin")
    try:
        agents = AgentClient.for_cluster(cluster, Settings())
        assert isinstance(agents.token, AudienceToken) and agents.token.audience == AUDIENCE
        http = agents.at(audience_agent.url)
        assert http.token and http.token != cluster.connection().token
        assert [d.index for d in http.devices().devices] == [0, 1]
        assert agents.at(audience_agent.url).token == http.token
        own = AgentClient.for_cluster(cluster, Settings(agent_audience=""))
        with pytest.raises(AgentError, match="HTTP 401"):
            own.at(audience_agent.url).devices()
    finally:
        cluster.close()


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    return cert, key


def test_the_runner_verifies_the_agents_certificate(tmp_path: Path, api: LabHandle) -> None:
    """Over HTTPS the runner trusts only the CA in ``agent_ca_file``: an agent whose certificate that CA signed is
    served, the same agent is unreachable to a runner given another CA or none (the system's CAs)."""
    cert, key = _self_signed(tmp_path, "agent")
    other, _ = _self_signed(tmp_path, "other")
    with running_agent(tmp_path, "gpu-8", api.url, api.token_for(AGENT_SA), allow_users=[RUNNER_SA_USER],
                       extra_args=["--audience", AUDIENCE, "--tls-cert", str(cert), "--tls-key", str(key)],
                       api_ca_file=api.ca_file) as agent:
        assert agent.url.startswith("https://")
        cluster = Cluster(api.client(), user="lab-admin")
        try:
            good = AgentClient.for_cluster(cluster, Settings(agent_ca_file=cert))
            assert good.scheme == "https" and len(good.at(agent.url).devices().devices) == 2
            for ca in (other, None):
                with pytest.raises(AgentUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
                    AgentClient.for_cluster(cluster, Settings(agent_ca_file=ca)).at(agent.url).devices()
        finally:
            cluster.close()


def test_a_runner_that_may_not_ask_for_the_token_fails_when_it_plans(api: LabHandle) -> None:
    """A runner identity without create on serviceaccounts/token gets a clear TargetError from the credential
    check that agent-held faults make when planned, before anything is injected."""
    cluster = Cluster(api.client(token=api.token_for("system:serviceaccount:default:nobody")), user="nobody")
    try:
        agents = AgentClient.for_cluster(cluster, Settings())
        with pytest.raises(TargetError, match=r"request a token for gameday/gameday-runner \(audience gameday-agent\)"):
            agents.check_credential()
    finally:
        cluster.close()
