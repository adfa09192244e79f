"""Tests for lab.runtime.envvars: a container's environment as the kubelet makes it."""

from __future__ import annotations

from typing import Any

from lab.runtime.envvars import container_env, expand


def _service(ns: str, name: str, ip: str, *ports: tuple[str, int]) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name},
            "spec": {"clusterIP": ip, "ports": [{"name": n, "port": p, "protocol": "TCP"} for n, p in ports]}}


SERVICES = [_service("inference", "gateway", "127.97.0.20", ("http", 80)),
            _service("inference", "model-server", "None", ("http", 8080)),
            _service("other", "elsewhere", "127.97.0.30", ("http", 81)),
            _service("default", "kubernetes", "127.97.0.1", ("https", 443))]


def test_env_resolves_downward_api() -> None:
    """Literal values and fieldRefs (pod IP, name, node) end up in the program's env."""
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "node-0"}}
    container = {"env": [{"name": "A", "value": "1"},
                         {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                         {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}
    assert container_env(container, pod, "127.10.0.9") == {"A": "1", "IP": "127.10.0.9", "NODE": "node-0"}


def test_service_links_cover_the_pods_namespace_and_the_api_server() -> None:
    """A pod sees its own namespace's Services with a ClusterIP and default/kubernetes, never another namespace's
    nor a headless one, and enableServiceLinks false leaves only the API server's."""
    pod = {"metadata": {"name": "p", "namespace": "inference"}, "spec": {}}
    env = container_env({}, pod, "10.0.0.1", services=SERVICES)
    assert env["GATEWAY_SERVICE_HOST"] == "127.97.0.20" and env["GATEWAY_SERVICE_PORT"] == "80"
    assert env["GATEWAY_SERVICE_PORT_HTTP"] == "80" and env["GATEWAY_PORT"] == "tcp://127.97.0.20:80"
    assert env["GATEWAY_PORT_80_TCP_ADDR"] == "127.97.0.20" and env["KUBERNETES_SERVICE_PORT"] == "443"
    assert not any(k.startswith(("MODEL_SERVER_", "ELSEWHERE_")) for k in env)
    quiet = container_env({}, {"metadata": {"namespace": "inference"}, "spec": {"enableServiceLinks": False}},
                          "10.0.0.1", services=SERVICES)
    assert {k.split("_", 1)[0] for k in quiet} == {"KUBERNETES"}


def test_references_expand_from_earlier_variables_only() -> None:
    """$(VAR) takes a Service link or an earlier entry's value, $$ escapes, and an unknown or later name stays."""
    pod = {"metadata": {"name": "p", "namespace": "inference"}, "spec": {}}
    container = {"env": [{"name": "NODE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                         {"name": "DNS", "value": "$(NODE_IP):53"},
                         {"name": "URL", "value": "http://$(GATEWAY_SERVICE_HOST):$(GATEWAY_SERVICE_PORT)/v1"},
                         {"name": "EARLY", "value": "$(LATE) $$(NODE_IP) $(NOPE)"},
                         {"name": "LATE", "value": "x"}]}
    env = container_env(container, pod, "10.0.0.1", "10.64.0.2", SERVICES)
    assert env["DNS"] == "10.64.0.2:53" and env["URL"] == "http://127.97.0.20:80/v1"
    assert env["EARLY"] == "$(LATE) $(NODE_IP) $(NOPE)"
    assert expand("$(A)$(A)", {"A": "b"}) == "bb"
