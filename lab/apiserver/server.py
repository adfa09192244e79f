"""The state of one emulated API server: store, registry, APF, metrics and users, bootstrapped."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from lab.apiserver import apf_defaults
from lab.apiserver.apf import FlowControl
from lab.apiserver.config import ApiServerConfig
from lab.apiserver.metrics import Metrics
from lab.apiserver.registry import Registry
from lab.apiserver.resources import BY_KEY
from lab.apiserver.store import Obj, Store
from lab.apiserver.users import UserTable, read_sa_secret

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_encoder = msgspec.json.Encoder()
JSON = "application/json"


class Server:
    """Everything a request handler needs."""

    def __init__(self, config: ApiServerConfig) -> None:
        self.config = config
        secret = read_sa_secret(config.sa_secret_file) if config.sa_secret_file else None
        self.users = UserTable(config.users, secret)
        self.store = Store(config.history)
        self.registry = Registry(self.store)
        self.metrics = Metrics(self.store)
        self.flow = FlowControl(self.store, self.metrics, config.seats, config.queue_timeout)
        self._bootstrap()

    def _bootstrap(self) -> None:
        namespaces = BY_KEY["namespaces"]
        for name in SYSTEM_NAMESPACES:
            self.registry.create(namespaces, "", {"metadata": {"name": name}})
        plcs = BY_KEY["prioritylevelconfigurations.flowcontrol.apiserver.k8s.io"]
        schemas = BY_KEY["flowschemas.flowcontrol.apiserver.k8s.io"]
        for obj in apf_defaults.priority_levels():
            obj["metadata"]["annotations"] = dict(apf_defaults.ANNOTATION)
            self.registry.create(plcs, "", obj)
        for obj in apf_defaults.flow_schemas():
            obj["metadata"]["annotations"] = dict(apf_defaults.ANNOTATION)
            self.registry.create(schemas, "", obj)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response encoded with msgspec."""
    return web.Response(body=_encoder.encode(obj), status=status, content_type=JSON, headers=headers)


def encode(obj: Obj | list[Any]) -> bytes:
    """Encode a JSON value."""
    return _encoder.encode(obj)
