"""The runtime's shared view of the cluster: API clients, identities and one informer per resource."""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from lab.runtime.client import ApiClient, api_path
from lab.runtime.config import RuntimeConfig
from lab.runtime.informer import Informer

ADMIN = "admin"
TOKEN_SECONDS = 86400
"""How long a pod's service-account token lives (no rotation in the lab: a day outlasts any lab run)."""


def client_session(config: RuntimeConfig, limit: int) -> aiohttp.ClientSession:
    """An HTTP session to the API server: verifying its certificate against the lab's CA where one is given."""
    ssl_ctx: ssl.SSLContext | bool = ssl.create_default_context(cafile=config.ca_file) if config.ca_file else True
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit, ssl=ssl_ctx))


def load_tokens(path: str | Path) -> dict[str, str]:
    """username -> bearer token from a users file ({token: {username, ...}})."""
    raw = json.loads(Path(path).read_text())
    return {str(info["username"]): str(token) for token, info in raw.items()}


@dataclass
class Cluster:
    """Everything components share: config, clients, tokens and informers."""

    config: RuntimeConfig
    tokens: dict[str, str]
    api: ApiClient
    watch_api: ApiClient
    sessions: list[aiohttp.ClientSession]
    pods: Informer = field(init=False)
    nodes: Informer = field(init=False)
    leases: Informer = field(init=False)
    services: Informer = field(init=False)
    endpoints: Informer = field(init=False)
    networkpolicies: Informer = field(init=False)

    def __post_init__(self) -> None:
        w = self.watch_api
        self.pods = Informer(w, api_path("", "v1", "pods"))
        self.nodes = Informer(w, api_path("", "v1", "nodes"))
        self.leases = Informer(w, api_path("coordination.k8s.io", "v1", "leases", "kube-node-lease"))
        self.services = Informer(w, api_path("", "v1", "services"))
        self.endpoints = Informer(w, api_path("", "v1", "endpoints"))
        self.networkpolicies = Informer(w, api_path("networking.k8s.io", "v1", "networkpolicies"))

    @classmethod
    def connect(cls, config: RuntimeConfig) -> Cluster:
        """Open HTTP sessions (node leases use their own, in the lease thread)."""
        tokens = load_tokens(config.users_file)
        # the kubelets' own calls use their node tokens; the admin's is for what a kubelet stand-in does beyond them
        admin = tokens[ADMIN]
        main = client_session(config, limit=64)
        watches = client_session(config, limit=0)
        return cls(
            config=config,
            tokens=tokens,
            api=ApiClient(config.api_url, admin, main),
            watch_api=ApiClient(config.api_url, tokens[ADMIN], watches),
            sessions=[main, watches],
        )

    def informers(self) -> list[Informer]:
        """All informers, in start order."""
        return [
            self.nodes, self.leases, self.pods, self.services, self.endpoints, self.networkpolicies,
        ]

    def token(self, username: str) -> str:
        """The token of a user; the admin token when the users file lacks that identity."""
        return self.tokens.get(username) or self.tokens[ADMIN]

    async def request_token(self, namespace: str, name: str, pod: str, uid: str, node_token: str) -> str:
        """A service-account token bound to one pod, from the TokenRequest API, asked for as the pod's node (the
        Node authorizer grants it only for a pod bound to that node), as a kubelet does for a projected token."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": TOKEN_SECONDS,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod, "uid": uid}}}
        path = api_path("", "v1", "serviceaccounts", namespace, name, "token")
        answer = await self.api.create(path, body, token=node_token)
        return str(answer["status"]["token"])

    async def wait_synced(self, timeout: float = 60.0) -> None:
        """Wait until every informer has listed once."""
        await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in self.informers())), timeout)

    async def close(self) -> None:
        """Close all HTTP sessions."""
        for session in self.sessions:
            await session.close()
