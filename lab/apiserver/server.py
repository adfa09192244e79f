"""The state of one emulated API server: store, registry, APF, metrics and users, bootstrapped."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from lab.apiserver import apf_defaults, errors
from lab.apiserver.apf import FlowControl
from lab.apiserver.config import ApiServerConfig
from lab.apiserver.memory import HeapModel, Lifecycle, MemoryCollector
from lab.apiserver.metrics import Metrics
from lab.apiserver.registry import Registry
from lab.apiserver.resources import BY_KEY
from lab.apiserver.store import Obj, Store
from lab.apiserver.users import UserTable, read_sa_secret

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_encoder = msgspec.json.Encoder()
JSON = "application/json"
log = logging.getLogger(__name__)


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
        self.heap = HeapModel(config.memory_limit, config.heap_amplification, config.gc_seconds)
        self.lifecycle = Lifecycle(config.restart_delay, config.restart_delay_max, config.cache_init_seconds)
        self.memory_metrics = MemoryCollector(self.heap, self.lifecycle)
        self.metrics.registry.register(self.memory_metrics)
        self.heap.on_oom = self.oom_kill
        self.on_kill: Callable[[float], None] | None = None
        self._bootstrap()

    def oom_kill(self) -> None:
        """The modelled heap passed the limit: die, cut every watch and connection, restart after a delay."""
        if self.lifecycle.down():
            return
        delay = self.lifecycle.killed()
        log.warning("OOM-killed (heap %.0f MiB > limit %.0f MiB): restarting in %.1f s",
                    self.heap.used() / 2**20, self.heap.limit / 2**20, delay)
        self.heap.reset()
        self.store.close_watchers()
        if self.on_kill is not None:
            self.on_kill(delay)

    def restarted(self) -> None:
        """Listening again after an OOM kill (the watch cache now re-initialises)."""
        self.lifecycle.started()
        self.memory_metrics.restarted()

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


def decode_object(raw: bytes) -> Obj:
    """A JSON request body as an object ({} when empty); 400 when malformed or not an object."""
    if not raw:
        return {}
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise errors.bad_request(f"the object provided is unrecognized or malformed: {exc}") from exc
    if not isinstance(body, dict):
        raise errors.bad_request("the object provided is unrecognized (must be a JSON object)")
    return body
