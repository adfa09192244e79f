"""Tests for lab.runtime.proxy: which ports are fronted, then a live Service through the proxy on the real plane,
with a NetworkPolicy that isolates its pods."""

from __future__ import annotations

import socket

from kubernetes import client

from lab.runtime.proxy import proxied_ports, ready_backends
from tests.conftest import poll
from tests.lab.runtime.conftest import RuntimeLab
from tests.lab.udp import ask


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
    return ask(ip, 5353, payload, timeout=0.5)


def _tcp(ip: str, payload: bytes) -> bytes | None:
    try:
        with socket.create_connection((ip, 5353), timeout=1) as sock:
            sock.sendall(payload)
            return sock.recv(4096)
    except (ConnectionRefusedError, TimeoutError):
        return None


def test_service_proxy_forwards_round_robin_and_refuses_without_admitted_endpoints(rt_lab: RuntimeLab) -> None:
    """UDP and TCP to a Service's ClusterIP reach every ready echo pod on the real nodes in turn; a deny-all ingress
    NetworkPolicy on the pods, or scaling to 0, leaves UDP unanswered and TCP refused; with the policy gone or the
    pods back, traffic flows again."""
    ns = rt_lab.namespace()
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "echo"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "echo"}},
                    "template": {"metadata": {"labels": {"app": "echo"}, "annotations": {
                        "lab.gameday/program": "lab.runtime.testprograms:UdpEchoProgram"}},
                        "spec": {"containers": [{"name": "c", "image": "lab/program",
                                                 "env": [{"name": "PORT", "value": "1053"}]}]}}}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
           "spec": {"selector": {"app": "echo"},
                    "ports": [{"name": "u", "port": 5353, "protocol": "UDP", "targetPort": 1053},
                              {"name": "t", "port": 5353, "protocol": "TCP", "targetPort": 1053}]}}
    deny = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny"},
            "spec": {"podSelector": {"matchLabels": {"app": "echo"}}, "policyTypes": ["Ingress"]}}
    rt_lab.apps.create_namespaced_deployment(ns, dep)
    ip = rt_lab.core.create_namespaced_service(ns, svc).spec.cluster_ip
    policies = client.NetworkingV1Api(rt_lab.core.api_client)
    poll(lambda: len(_udp_answers(ip)) == 2, 60, "UDP echo from both pods through the proxy")
    pods = {p.metadata.name.encode() for p in rt_lab.core.list_namespaced_pod(ns).items}
    assert _udp_answers(ip) == pods and len(pods) == 2
    poll(lambda: (a := _tcp(ip, b"hi")) and a.endswith(b":hi"), 10, "TCP echo")
    policies.create_namespaced_network_policy(ns, deny)
    poll(lambda: _udp(ip, b"ping") is None and _tcp(ip, b"hi") is None, 15, "no answer while the policy isolates")
    policies.delete_namespaced_network_policy("deny", ns)
    poll(lambda: _udp(ip, b"ping"), 15, "UDP echo once the policy is gone")
    rt_lab.apps.patch_namespaced_deployment_scale("echo", ns, {"spec": {"replicas": 0}})
    poll(lambda: _udp(ip, b"ping") is None and _tcp(ip, b"hi") is None, 30, "no answer without endpoints")
    rt_lab.apps.patch_namespaced_deployment_scale("echo", ns, {"spec": {"replicas": 1}})
    poll(lambda: _udp(ip, b"ping"), 60, "UDP echo after scale-up")


def _udp_answers(ip: str) -> set[bytes]:
    """The pod names that answer 20 UDP pings through the ClusterIP."""
    return {(_udp(ip, b"ping") or b"").split(b":")[0] for _ in range(20)} - {b""}
