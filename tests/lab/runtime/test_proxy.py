"""Tests for lab.runtime.proxy: which ports are fronted, then a live Service through the proxy."""

from __future__ import annotations

import socket
from typing import Any

from lab.runtime.proxy import proxied_ports, ready_backends
from lab.runtime.testing import wait_for


def test_only_loopback_cluster_ips_are_fronted() -> None:
    """Loopback clusterIPs are fronted per port and protocol; headless and non-loopback ones are not."""
    svc = {"spec": {"clusterIP": "127.96.0.10", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                                         {"name": "dns-tcp", "port": 53}]}}
    assert proxied_ports(svc) == [(("127.96.0.10", 53, "UDP"), "dns"), (("127.96.0.10", 53, "TCP"), "dns-tcp")]
    assert proxied_ports({"spec": {"clusterIP": "None", "ports": [{"port": 1}]}}) == []
    assert proxied_ports({"spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 1}]}}) == []


def test_ready_backends_match_port_name_and_protocol() -> None:
    """Only ready addresses of the named port with the right protocol are backends."""
    eps = {"subsets": [{"addresses": [{"ip": "127.10.0.1"}], "notReadyAddresses": [{"ip": "127.10.0.2"}],
                        "ports": [{"name": "dns", "port": 1053, "protocol": "UDP"},
                                  {"name": "dns-tcp", "port": 1053, "protocol": "TCP"}]}]}
    assert ready_backends(eps, "dns", "UDP") == [("127.10.0.1", 1053)]
    assert ready_backends(eps, "dns-tcp", "TCP") == [("127.10.0.1", 1053)]
    assert ready_backends(None, "dns", "UDP") == []


def _udp(ip: str, payload: bytes) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        sock.sendto(payload, (ip, 5353))
        try:
            return sock.recv(4096)
        except (TimeoutError, ConnectionRefusedError):
            return None


def _tcp(ip: str, payload: bytes) -> bytes | None:
    try:
        with socket.create_connection((ip, 5353), timeout=1) as sock:
            sock.sendall(payload)
            return sock.recv(4096)
    except (ConnectionRefusedError, TimeoutError):
        return None


def test_service_proxy_forwards_round_robin_and_refuses_without_endpoints(rt_lab: Any) -> None:
    """UDP and TCP to the clusterIP reach every ready echo pod in turn; scaled to 0, UDP gets no answer
    and TCP is refused; scaled back, traffic flows again (uses the runtime's own echo pod program)."""
    ns = rt_lab.namespace()
    ip = f"127.{96 + rt_lab.slot}.1.53"
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "echo"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "echo"}},
                    "template": {"metadata": {"labels": {"app": "echo"}, "annotations": {
                        "lab.gameday/program": "lab.runtime.testprograms:UdpEchoProgram"}},
                        "spec": {"containers": [{"name": "c", "image": "lab/program",
                                                 "env": [{"name": "PORT", "value": "1053"}]}]}}}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
           "spec": {"clusterIP": ip, "selector": {"app": "echo"},
                    "ports": [{"name": "u", "port": 5353, "protocol": "UDP", "targetPort": 1053},
                              {"name": "t", "port": 5353, "protocol": "TCP", "targetPort": 1053}]}}
    rt_lab.apps.create_namespaced_deployment(ns, dep)
    rt_lab.core.create_namespaced_service(ns, svc)
    try:
        wait_for(lambda: _udp(ip, b"ping"), what="UDP echo through the proxy")
        answers = {(_udp(ip, b"ping") or b"").split(b":")[0] for _ in range(20)}
        pods = {p.metadata.name.encode() for p in rt_lab.core.list_namespaced_pod(ns).items}
        wait_for(lambda: (a := _tcp(ip, b"hi")) and a.endswith(b":hi"), what="TCP echo")
        assert answers == pods and len(pods) == 2
        rt_lab.apps.patch_namespaced_deployment_scale("echo", ns, {"spec": {"replicas": 0}})
        wait_for(lambda: _udp(ip, b"ping") is None and _tcp(ip, b"hi") is None, what="no answer without endpoints")
        rt_lab.apps.patch_namespaced_deployment_scale("echo", ns, {"spec": {"replicas": 1}})
        wait_for(lambda: _udp(ip, b"ping"), what="UDP echo after scale-up")
    finally:
        rt_lab.core.delete_namespaced_service("echo", ns)
