"""Fixtures for the API server tests: one shared server subprocess, clients and kubectl runner."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from lab.apiserver.testing import RunningApiServer, running_apiserver
from tests.conftest import require

NODES = ["node-a", "node-b"]
SERVICE_ACCOUNTS = [("default", "storm"), ("kube-system", "ctrl")]


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApiServer]:
    """A shared API server (60 seats) for contract tests."""
    with running_apiserver(
        tmp_path_factory.mktemp("apiserver"),
        nodes=NODES,
        service_accounts=SERVICE_ACCOUNTS,
        history=500,
        bookmark_interval=0.5,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def api_client(api: RunningApiServer) -> Iterator[client.ApiClient]:
    """The official Python client, configured from the generated kubeconfig (admin context)."""
    c = config.new_client_from_config(config_file=str(api.kubeconfig), context="lab-admin")
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    """CoreV1Api on the shared server."""
    return client.CoreV1Api(api_client)


@pytest.fixture
def namespace(core: client.CoreV1Api, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards."""
    name = "t-" + re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:40].strip("-")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)


class Kubectl:
    """Runs kubectl against the lab kubeconfig."""

    def __init__(self, kubeconfig: Path, binary: str) -> None:
        self.kubeconfig = kubeconfig
        self.binary = binary

    def __call__(self, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 60) -> Any:
        """Run kubectl; return the CompletedProcess (raise on failure when check)."""
        proc = subprocess.run(
            [self.binary, "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc


@pytest.fixture(scope="session")
def kubectl(api: RunningApiServer) -> Kubectl:
    """A kubectl runner (skips locally, fails in CI, when kubectl is missing)."""
    binary = shutil.which("kubectl")
    require(binary is not None, "kubectl not found: install kubectl 1.32")
    assert binary is not None
    return Kubectl(api.kubeconfig, binary)
