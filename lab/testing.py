"""Start a lab for the length of a ``with`` block (the fixtures the project's integration tests use); every one
runs the same code as ``python -m lab up`` and always runs ``down`` on exit, even when ``up`` or the block failed,
so no process outlives it.

The real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok's nodes, and with
``real_nodes``/``gpu_nodes`` the lab's own nodes whose pods really run; root); the components are built first
when the cache lacks them::

    with running_control_plane(tmp_path, nodes=1, real_nodes=2, gpu_nodes=1, node_monitor_grace_seconds=8) as lab:
        lab.kubeconfig      # Path; contexts "lab" (gameday-runner, current) and "lab-admin"
        lab.endpoints       # {"apiserver", "ca_file", "prometheus", "dns", "runtime", "gpu_agents", ...}
        lab.admin_token     # system:masters (APF exempt)
        lab.runner_token    # gameday-runner (group gameday:runners)
        lab.agent_token     # what the runner sends node agents: gameday/gameday-runner's token for gameday-agent
        lab.token_for("system:serviceaccount:telemetry:telemetry")   # a TokenRequest token
        lab.control("lab-node-1", "pause")   # pause|resume|kill|revive a real node's kubelet (the runtime's API)
        lab.client()        # kubernetes.client.ApiClient (admin unless token= is given)
        lab.kubectl("create", "namespace", "demo")          # the lab's own kubectl v1.37.2, context "lab"

Only the real etcd and kube-apiserver, for tests of API clients (Node objects and ``system:node:`` identities for
``nodes``; static users in ``identities``; service-account tokens from the real TokenRequest)::

    with running_api(tmp_path, nodes=["gpu-1"], identities={"mallory": ["devs"]}, request_timeout_seconds=8) as api:
        api.url, api.ca_file, api.kubeconfig                  # HTTPS; contexts "lab" (runner) and "lab-admin"
        api.token_for("system:serviceaccount:gameday:gameday-agent")
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from lab.build import default_cache_dir, ensure_built
from lab.control import plane
from lab.control.components import ControlPlaneOptions
from lab.control.users import ADMIN, RUNNER, token_for
from lab.errors import LabError
from lab.gpu.nodes import AGENT_AUDIENCE


@dataclass
class LabHandle:
    """A running lab: where it is and who may talk to it."""

    state_dir: Path
    endpoints: dict[str, Any]
    users: dict[str, dict[str, Any]]
    _sa_tokens: dict[tuple[str, str, str], str] = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        """The API server's URL (HTTPS on the real plane: ``endpoints["ca_file"]`` is its CA)."""
        return str(self.endpoints["apiserver"])

    @property
    def ca_file(self) -> Path:
        """The CA that signed the API server's serving certificate."""
        return Path(self.endpoints["ca_file"])

    @property
    def kubeconfig(self) -> Path:
        """The kubeconfig (current context ``lab`` = gameday-runner; ``lab-admin`` = admin)."""
        return Path(self.endpoints["kubeconfig"])

    @property
    def admin_token(self) -> str:
        """The admin (system:masters) bearer token."""
        return token_for(self.users, ADMIN)

    @property
    def runner_token(self) -> str:
        """The gameday-runner bearer token."""
        return token_for(self.users, RUNNER)

    def token_for(self, username: str) -> str:
        """The bearer token of any lab identity: a static one from the users file or, on the real plane, a
        ``system:serviceaccount:<ns>:<name>`` token the API server issues (TokenRequest; the account is created
        first when missing)."""
        try:
            return token_for(self.users, username)
        except KeyError:
            prefix = "system:serviceaccount:"
            if not username.startswith(prefix) or self.endpoints.get("control_plane") != "real":
                raise
            namespace, _, name = username[len(prefix):].partition(":")
            return self.request_token(namespace, name)

    @property
    def agent_token(self) -> str:
        """What a runner sends the lab's node agents: its service account's token issued for the audience
        ``gameday-agent`` (the agents accept no other; gameday's default ``agent_audience``)."""
        return self.request_token("gameday", RUNNER, audience=AGENT_AUDIENCE)

    def request_token(self, namespace: str, name: str, expiration_seconds: int = 3600, audience: str = "") -> str:
        """A service account's token from the real API server's TokenRequest (namespace and account are created
        when missing), for ``audience`` when given (else the API server's); one per account and audience for the
        handle's life."""
        key = (namespace, name, audience)
        if key not in self._sa_tokens:
            from kubernetes import client
            from kubernetes.client.exceptions import ApiException

            with self.client() as api:
                core = client.CoreV1Api(api)
                try:
                    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
                except ApiException as err:
                    if err.status != 409:
                        raise
                try:
                    core.create_namespaced_service_account(
                        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name)))
                except ApiException as err:
                    if err.status != 409:
                        raise
                answer = core.create_namespaced_service_account_token(name, namespace, client.AuthenticationV1TokenRequest(
                    spec=client.V1TokenRequestSpec(audiences=[audience] if audience else [],
                                                   expiration_seconds=expiration_seconds)))
                if answer.status is None or not answer.status.token:
                    raise LabError(f"the API server issued no token for {namespace}/{name}")
                self._sa_tokens[key] = answer.status.token
        return self._sa_tokens[key]

    def control(self, node: str, action: str) -> dict[str, Any]:
        """pause | resume | kill | revive a node's kubelet through the runtime's control API."""
        resp = httpx.post(f"{self.endpoints['runtime']}/control/nodes/{node}/{action}", timeout=10)
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    def client(self, token: str | None = None) -> Any:
        """A ``kubernetes.client.ApiClient`` for the lab (admin unless a token is given)."""
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.endpoints["apiserver"]
        cfg.api_key = {"authorization": f"Bearer {token or self.admin_token}"}
        if self.endpoints.get("ca_file"):
            cfg.ssl_ca_cert = self.endpoints["ca_file"]
        return client.ApiClient(cfg)

    def kubectl(self, *args: str, context: str = "lab", stdin: str | None = None,
                timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run kubectl (the lab's own build when it has one) with the lab's kubeconfig; never raises on exit codes."""
        binary = self.endpoints.get("kubectl") or "kubectl"
        return subprocess.run([binary, "--kubeconfig", str(self.kubeconfig), "--context", context, *args],
                              input=stdin, capture_output=True, text=True, timeout=timeout, check=False)


@contextmanager
def running_control_plane(state_dir: Path, nodes: int = 3, cache_dir: Path | None = None,
                          **knobs: Any) -> Iterator[LabHandle]:
    """``lab up`` in state_dir (building missing components first), yield a LabHandle,
    and always ``lab down``; knobs are ``ControlPlaneOptions`` fields."""
    state_dir = Path(state_dir).resolve()
    root = cache_dir or default_cache_dir(os.environ.get("XDG_CACHE_HOME"), Path.home())
    binaries = ensure_built(root, plane.BINARIES)
    try:
        endpoints = plane.up(ControlPlaneOptions(state_dir, nodes=nodes, **knobs), binaries)
        users = json.loads((state_dir / "users.json").read_text())
        yield LabHandle(state_dir, endpoints, users)
    finally:
        plane.down(state_dir)


@contextmanager
def running_api(state_dir: Path, nodes: list[str] | None = None, identities: dict[str, list[str]] | None = None,
                cache_dir: Path | None = None, **knobs: Any) -> Iterator[LabHandle]:
    """Only the real etcd and kube-apiserver (``ControlPlaneOptions.api_only``), with a Node object and a
    ``system:node:<name>`` identity for each of ``nodes`` and the extra static users in ``identities`` (name ->
    groups); service-account tokens come from ``handle.token_for``. Always ``lab down``."""
    with running_control_plane(state_dir, nodes=0, cache_dir=cache_dir, api_only=True,
                               node_identities=tuple(nodes or ()),
                               identities=tuple((name, tuple(groups)) for name, groups in (identities or {}).items()),
                               **knobs) as handle:
        if nodes:
            from kubernetes import client

            with handle.client() as api:
                for name in nodes:
                    client.CoreV1Api(api).create_node(client.V1Node(metadata=client.V1ObjectMeta(name=name)))
        yield handle
