"""A shared API server + runtime for the runtime tests (4 nodes, 1 GPU node, time scale 10)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kubernetes import client

from lab.apiserver.testing import RunningApiServer, running_apiserver
from lab.apiserver.users import new_sa_secret
from lab.runtime import slots
from lab.runtime.config import RuntimeConfig
from lab.runtime.identities import CONTROL_PLANE_USERS, LAB_NAMESPACES, service_accounts
from lab.runtime.testing import RunningRuntime, running_runtime
from lab.runtime.testing import wait_for as poll

NODES, GPU_NODES, TIME_SCALE = 4, 1, 10.0


@dataclass
class RuntimeLab:
    """The API server, the runtime and typed clients for tests."""

    api: RunningApiServer
    runtime: RunningRuntime
    core: client.CoreV1Api
    apps: client.AppsV1Api
    node_names: list[str]
    slot: int
    sa_secret: bytes

    def namespace(self) -> str:
        """Create a fresh namespace for one test."""
        name = f"t-{uuid.uuid4().hex[:8]}"
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        return name


@pytest.fixture(scope="session")
def rt_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeLab]:
    """One API server and runtime shared by the runtime tests."""
    base = tmp_path_factory.mktemp("rtlab")
    cfg = RuntimeConfig(api_url="", users_file="", nodes=NODES, gpu_nodes=GPU_NODES)
    names = cfg.node_names()
    secret_file = base / "sa-secret"
    secret = new_sa_secret(secret_file)
    with running_apiserver(base, nodes=names, service_accounts=service_accounts(), sa_secret_file=secret_file,
                           extra_users={k: list(v) for k, v in CONTROL_PLANE_USERS.items()}) as api:
        api_client = api.client()
        core = client.CoreV1Api(api_client)
        for ns in LAB_NAMESPACES:
            try:
                core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
            except client.ApiException as err:
                if err.status != 409:
                    raise
        users_file = base / "apiserver-users.json"
        slot = slots.claim(base)
        try:
            with running_runtime(base / "runtime", api.url, users_file, nodes=NODES, gpu_nodes=GPU_NODES,
                                 time_scale=TIME_SCALE, eviction_timeout=100.0, slot=slot,
                                 sa_secret_file=secret_file) as rt:
                lab = RuntimeLab(api, rt, core, client.AppsV1Api(api_client), names, slot, secret)
                poll(lambda: len([n for n in core.list_node().items if _ready(n)]) == NODES, what="nodes Ready")
                yield lab
        finally:
            slots.release(base)
            api_client.close()


def _ready(node: client.V1Node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


BIG_NODES = 200


@pytest.fixture(scope="module")
def big_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeLab]:
    """A separate API server and runtime with 200 nodes, for rollouts long enough to interrupt."""
    base = tmp_path_factory.mktemp("bigrtlab")
    names = RuntimeConfig(api_url="", users_file="", nodes=BIG_NODES).node_names()
    secret_file = base / "sa-secret"
    secret = new_sa_secret(secret_file)
    with running_apiserver(base, nodes=names, sa_secret_file=secret_file,
                           extra_users={k: list(v) for k, v in CONTROL_PLANE_USERS.items()}) as api:
        api_client = api.client()
        slot = slots.claim(base)
        try:
            with running_runtime(base / "runtime", api.url, base / "apiserver-users.json", nodes=BIG_NODES,
                                 time_scale=TIME_SCALE, slot=slot, sa_secret_file=secret_file) as rt:
                core = client.CoreV1Api(api_client)
                lab = RuntimeLab(api, rt, core, client.AppsV1Api(api_client), names, slot, secret)
                poll(lambda: len([n for n in core.list_node().items if _ready(n)]) == BIG_NODES, what="nodes Ready")
                yield lab
        finally:
            slots.release(base)
            api_client.close()
