"""Tests for the real control plane's files and command lines (no process is started)."""

from __future__ import annotations

import base64
import ipaddress
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from lab.control import components, kwok, pki, plane
from lab.control.components import ORDER, ControlPlaneOptions, Layout, Ports
from lab.errors import LabError
from lab.wellknown import KWOK_NODE_ANNOTATION


def _layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path, Ports(2379, 2380, 6443, 10257, 10259, 10247), {"kube-apiserver": Path("/b/kas")})


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_knobs_reach_the_flags(tmp_path: Path) -> None:
    """Every knob of ControlPlaneOptions appears as the flag of the component that owns it."""
    opts = ControlPlaneOptions(tmp_path, max_requests_inflight=7, max_mutating_requests_inflight=3,
                               node_lease_seconds=12, node_monitor_grace_seconds=9, node_monitor_period_seconds=2,
                               not_ready_toleration_seconds=31, unreachable_toleration_seconds=32,
                               service_cidr="10.100.0.0/16", pod_cidr="10.50.0.0/16")
    layout = _layout(tmp_path)
    api = components.argv("kube-apiserver", layout, opts)
    assert api[api.index("--") + 1] == "/b/kas"  # run by its supervisor
    assert _flag(api, "--memory-limit-mib") == "0" and _flag(api, "--backoff") == "10"
    assert _flag(api, "--max-requests-inflight") == "7" and _flag(api, "--max-mutating-requests-inflight") == "3"
    assert _flag(api, "--default-not-ready-toleration-seconds") == "31"
    assert _flag(api, "--default-unreachable-toleration-seconds") == "32"
    assert _flag(api, "--service-cluster-ip-range") == "10.100.0.0/16"
    assert _flag(api, "--authorization-mode") == "Node,RBAC"
    assert _flag(api, "--etcd-servers") == "http://127.0.0.1:2379"
    kcm = components.argv("kube-controller-manager", layout, opts)
    assert _flag(kcm, "--node-monitor-grace-period") == "9s" and _flag(kcm, "--node-monitor-period") == "2s"
    assert "--use-service-account-credentials" in kcm
    kwok_args = components.argv("kwok", layout, opts)
    assert _flag(kwok_args, "--node-lease-duration-seconds") == "12" and _flag(kwok_args, "--cidr") == "10.50.0.0/16"
    assert kwok_args[0] == "kwok"  # not in the binaries map: looked up on PATH
    with pytest.raises(KeyError):
        components.argv("kubelet", layout, opts)


def test_every_component_has_health_and_metrics_urls(tmp_path: Path) -> None:
    """Each started component is awaited at a health URL and scraped at /metrics on its own port."""
    layout = _layout(tmp_path)
    ports = {layout.health_url(name).split(":")[2].split("/")[0] for name in ORDER}
    assert len(ports) == len(ORDER)
    assert all(layout.metrics_url(name).endswith("/metrics") for name in ORDER)
    assert layout.health_url("kube-apiserver") == "https://127.0.0.1:6443/readyz"


def test_tokens_csv_quotes_groups() -> None:
    """The static token file has one line per identity with its groups quoted, system:authenticated left out."""
    users = {"t1": {"username": "admin", "uid": "u1", "groups": ["system:masters", "system:authenticated"]},
             "t2": {"username": "kwok-controller", "uid": "u2", "groups": ["system:nodes", "x:y"]}}
    assert components.tokens_csv(users).splitlines() == [
        't1,admin,u1,"system:masters"', 't2,kwok-controller,u2,"system:nodes,x:y"']


def test_kubeconfig_inlines_the_ca(tmp_path: Path) -> None:
    """A kubeconfig carries the CA's bytes and one context per user, the first current."""
    ca = pki.new_ca(tmp_path)
    config = components.kubeconfig("https://127.0.0.1:1", ca.cert, {"lab": "a", "lab-admin": "b"})
    assert base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]) == ca.cert.read_bytes()
    assert config["current-context"] == "lab"
    assert [u["user"]["token"] for u in config["users"]] == ["a", "b"]
    path = components.write_kubeconfig(tmp_path / "k" / "config", config)
    assert path.stat().st_mode & 0o777 == 0o600


def test_serving_certificate_is_signed_by_the_ca(tmp_path: Path) -> None:
    """A serving certificate names its IPs and DNS names and verifies against the lab's CA."""
    ca = pki.new_ca(tmp_path)
    pair = pki.serving_cert(ca, tmp_path, "kube-apiserver", ["127.0.0.1", "10.96.0.1", "kubernetes.default.svc"])
    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    cert.verify_directly_issued_by(ca_cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"),
                                                       ipaddress.ip_address("10.96.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["kubernetes.default.svc"]
    assert pair.key.stat().st_mode & 0o777 == 0o600
    keys = pki.service_account_keys(tmp_path)
    assert b"PUBLIC KEY" in keys.cert.read_bytes()


def test_pki_rejects_a_key_that_is_not_ec(tmp_path: Path) -> None:
    """A CA key file of another kind is refused with a TypeError, not used."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    ca = pki.new_ca(tmp_path)
    other = ed25519.Ed25519PrivateKey.generate()
    ca.key.write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    with pytest.raises(TypeError, match="EC private key"):
        pki.serving_cert(ca, tmp_path, "x", ["127.0.0.1"])
    assert not (tmp_path / "x.crt").exists()


def test_kwok_configuration_has_node_and_pod_stages(tmp_path: Path) -> None:
    """kwok's config is a KwokConfiguration and Stages for Nodes and Pods, including Job completion, readiness
    regained after a missed lease, and deletion."""
    docs = list(yaml.safe_load_all(kwok.write_config(tmp_path / "kwok.yaml").read_text()))
    assert docs[0]["kind"] == "KwokConfiguration"
    stages = {d["metadata"]["name"]: d["spec"]["resourceRef"]["kind"] for d in docs[1:]}
    assert all(d["kind"] == "Stage" for d in docs[1:])
    assert sorted(stages.values()) == ["Node", "Node", "Pod", "Pod", "Pod", "Pod"]
    assert {"lab-pod-complete", "lab-pod-ready-again", "lab-pod-delete", "lab-node-heartbeat"} <= set(stages)


def test_kwok_nodes_have_distinct_addresses() -> None:
    """Every kwok node gets its own InternalIP annotation, and kwok manages it by annotation."""
    ips = [kwok.node_ip(i) for i in range(1000)]
    assert len(set(ips)) == 1000
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.240.0.0/16") for ip in ips)
    assert not any(ip.endswith(".0") for ip in ips)
    node = kwok.node("kwok-node-0", ips[0])
    assert node["metadata"]["annotations"][KWOK_NODE_ANNOTATION] == "fake"


def test_missing_binaries_are_named_before_anything_starts(tmp_path: Path) -> None:
    """up refuses at once, naming each missing component, when binaries are absent; nothing is written."""
    present = tmp_path / "etcd"
    present.write_text("")
    with pytest.raises(LabError, match=r"missing lab components \[.*'kube-apiserver'.*'kubectl', 'coredns'\]"):
        plane.up(ControlPlaneOptions(tmp_path / "state"), {"etcd": present})
    assert not (tmp_path / "state").exists()


def test_knobs_that_cannot_work_are_all_named(tmp_path: Path) -> None:
    """Bad knobs are reported together, each by name, and up refuses them before writing anything."""
    opts = ControlPlaneOptions(tmp_path / "state", nodes=0, node_monitor_grace_seconds=5, node_monitor_period_seconds=5,
                               not_ready_toleration_seconds=-1, service_cidr="10.96.0.1/16", pod_cidr="10.0.0.0/8",
                               janitor=True)
    found = opts.problems()
    assert [p.split(":")[0] for p in found] == ["nodes", "not_ready_toleration_seconds", "janitor",
                                                "node_monitor_grace_seconds", "service_cidr", "pod_cidr"]
    assert "has host bits set" in found[4] and "overlaps node addresses" in found[5]
    with pytest.raises(LabError, match="cannot work") as err:
        plane.up(opts, {})
    assert all(p in str(err.value) for p in found)
    assert not (tmp_path / "state").exists()
    assert ControlPlaneOptions(tmp_path).problems() == []


def test_with_real_nodes_the_api_server_listens_and_advertises_on_a_pod_network_address(tmp_path: Path) -> None:
    """Given a non-loopback host (lab-node-0's address), the API server binds and advertises it and keeps its
    endpoint reconciler (the kubernetes Service gets a real endpoint); on loopback it has none."""
    layout = Layout(tmp_path, Ports(2379, 2380, 6443, 10257, 10259, 10247), {}, apiserver_host="198.51.100.1")
    api = components.argv("kube-apiserver", layout, ControlPlaneOptions(tmp_path))
    assert _flag(api, "--bind-address") == _flag(api, "--advertise-address") == "198.51.100.1"
    assert "--endpoint-reconciler-type" not in api
    assert layout.apiserver_url == "https://198.51.100.1:6443"
    loopback = components.argv("kube-apiserver", _layout(tmp_path), ControlPlaneOptions(tmp_path))
    assert _flag(loopback, "--endpoint-reconciler-type") == "none"


def test_real_node_knobs_that_cannot_work_are_named(tmp_path: Path) -> None:
    """Too many real nodes for a slot's /26, and a slot outside 0-7, are named before anything starts."""
    found = ControlPlaneOptions(tmp_path, real_nodes=9, slot=8).problems()
    names = [p.split(":")[0] for p in found]
    assert "real_nodes" in names and "slot" in names


def test_addons_put_kube_dns_at_the_service_ranges_tenth_address(tmp_path: Path) -> None:
    """The cluster-DNS add-on follows the service range knob (kube-dns at its tenth address)."""
    docs = plane.addons(ControlPlaneOptions(tmp_path, service_cidr="10.100.0.0/16"))
    service = next(d for d in docs if d["kind"] == "Service")
    assert service["metadata"]["name"] == "kube-dns" and service["spec"]["clusterIP"] == "10.100.0.10"
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].startswith("registry.k8s.io/coredns/")
