"""The lab's own nodes on the real control plane: registered and heartbeaten as their own node identities, their
pods scheduled by the real scheduler and really run, on the slot's TEST-NET pod network."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client

from lab.control import plane
from lab.network import PodNetwork
from lab.runtime.nodeagent import NODE_KIND_LABEL
from lab.testing import LabHandle, running_control_plane
from tests.conftest import poll, require
from tests.lab.udp import ask

REAL_NODES = ["lab-node-0", "lab-node-1"]
FAST: dict[str, Any] = {"node_lease_seconds": 4, "node_monitor_grace_seconds": 6, "node_monitor_period_seconds": 1,
                        "not_ready_toleration_seconds": 60, "unreachable_toleration_seconds": 60}
"""Leases renewed every second and NotReady 6 s after the last renewal; pods stay on a NotReady node 60 s."""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    """A real control plane with one kwok node and two real lab nodes."""
    require(os.geteuid() == 0, "the real nodes' pod network needs root (ip link/addr)")
    with running_control_plane(tmp_path_factory.mktemp("real-nodes"), nodes=1, real_nodes=2, **FAST) as handle:
        yield handle


def _core(lab: LabHandle, token: str | None = None) -> Any:
    from kubernetes import client

    return client.CoreV1Api(lab.client(token))


def _apply(lab: LabHandle, *docs: dict[str, Any]) -> None:
    done = lab.kubectl("apply", "-f", "-", context="lab-admin", stdin=yaml.safe_dump_all(docs))
    assert done.returncode == 0, done.stderr


def _echo(ip: str) -> bytes | None:
    """What the UDP echo program at ip answers (None: nobody answers)."""
    return ask(ip, 1053)


def _deployment(name: str, ns: str, replicas: int, program: str, env: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name},
                                           "annotations": {"lab.gameday/program": program}},
                              "spec": {"nodeSelector": {NODE_KIND_LABEL: "real"},
                                       "containers": [{"name": name, "image": "lab/program",
                                                       "env": [{"name": k, "value": v} for k, v in env.items()]}]}}},
    }


def _namespace(lab: LabHandle, name: str) -> str:
    _apply(lab, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    poll(lambda: _core(lab).list_namespaced_service_account(name).items, 30, f"{name}'s default service account")
    return name


def test_real_nodes_register_and_renew_leases_as_their_own_identities(lab: LabHandle) -> None:
    """Each real node is Ready with an InternalIP in the slot's pod network, renews its own Lease (holder = the node,
    owned by its Node), and NodeRestriction lets its identity write its own status but not another node's."""
    from kubernetes.client import ApiException

    network = PodNetwork(lab.endpoints["slot"], len(REAL_NODES))
    assert lab.endpoints["real_nodes"] == REAL_NODES
    from kubernetes import client

    leases = client.CoordinationV1Api(lab.client())
    for i, name in enumerate(REAL_NODES):
        node = _core(lab).read_node(name)
        assert node.metadata.labels[NODE_KIND_LABEL] == "real"
        assert [a.address for a in node.status.addresses if a.type == "InternalIP"] == [network.node_ip(i)]
        assert next(c.status for c in node.status.conditions if c.type == "Ready") == "True"
        first = leases.read_namespaced_lease(name, "kube-node-lease")
        assert first.spec.holder_identity == name and first.metadata.owner_references[0].uid == node.metadata.uid
        poll(lambda n=name, t=first.spec.renew_time: leases.read_namespaced_lease(n, "kube-node-lease").spec.renew_time > t,
             30, f"{name}'s lease renewed")
    own = _core(lab, lab.token_for("system:node:lab-node-0"))
    patch = {"metadata": {"annotations": {"gameday.dev/checked": "yes"}}}
    assert own.patch_node_status("lab-node-0", patch).metadata.annotations["gameday.dev/checked"] == "yes"
    with pytest.raises(ApiException) as refused:
        own.patch_node_status("lab-node-1", patch)
    assert refused.value.status == 403


def test_pods_on_real_nodes_run_on_pod_ips_that_the_real_controllers_publish(lab: LabHandle) -> None:
    """A Deployment selecting the real nodes is scheduled by kube-scheduler; each pod's program answers on its own
    TEST-NET pod IP, the EndpointSlice controller publishes exactly those IPs, a deleted pod's program stops and
    its replacement runs, and scaling to 0 stops every program and frees every address."""
    from kubernetes import client

    ns = _namespace(lab, "echo")
    _apply(lab, _deployment("echo", ns, 3, "lab.runtime.testprograms:UdpEchoProgram", {"PORT": "1053"}),
           {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo", "namespace": ns},
            "spec": {"selector": {"app": "echo"}, "ports": [{"port": 1053, "protocol": "UDP"}]}})
    core = _core(lab)

    def ready_pods() -> list[Any]:
        pods = core.list_namespaced_pod(ns, label_selector="app=echo").items
        live = [p for p in pods if p.metadata.deletion_timestamp is None]
        ok = len(live) == 3 and all(p.status.pod_ip and any(c.type == "Ready" and c.status == "True"
                                                            for c in p.status.conditions or []) for p in live)
        return live if ok else []

    pods = poll(ready_pods, 60, "three echo pods Ready")
    cidr = ipaddress.ip_network(lab.endpoints["pod_network"])
    assert {p.spec.node_name for p in pods} <= set(REAL_NODES)
    for pod in pods:
        assert ipaddress.ip_address(pod.status.pod_ip) in cidr
        assert _echo(pod.status.pod_ip) == f"{pod.metadata.name}:ping".encode()
    slices = client.DiscoveryV1Api(lab.client())

    def published() -> set[str]:
        items = slices.list_namespaced_endpoint_slice(ns, label_selector="kubernetes.io/service-name=echo").items
        return {a for s in items for e in s.endpoints or [] if e.conditions.ready for a in e.addresses}

    poll(lambda: published() == {p.status.pod_ip for p in pods}, 30, "the EndpointSlice to list the three pod IPs")
    victim = pods[0]
    core.delete_namespaced_pod(victim.metadata.name, ns)
    poll(lambda: _echo(victim.status.pod_ip) != f"{victim.metadata.name}:ping".encode(), 30,
         "the deleted pod's program to stop")
    replaced = poll(lambda: (p := ready_pods()) and victim.metadata.name not in {x.metadata.name for x in p} and p,
                    60, "a replacement pod Ready")
    assert all(_echo(p.status.pod_ip) == f"{p.metadata.name}:ping".encode() for p in replaced)
    client.AppsV1Api(lab.client()).patch_namespaced_deployment_scale("echo", ns, {"spec": {"replicas": 0}})
    poll(lambda: not core.list_namespaced_pod(ns, label_selector="app=echo").items, 60, "every echo pod gone")
    assert all(_echo(p.status.pod_ip) is None for p in replaced)
    network = PodNetwork(lab.endpoints["slot"], len(REAL_NODES))
    # left on the link: the nodes' addresses and the pod IPs of the inference workload's programs (in the nodes'
    # own namespace), none of the echo pods'
    workload = {p.status.pod_ip for p in core.list_namespaced_pod("inference").items}
    nodes = {network.node_ip(i) for i in range(len(REAL_NODES))}
    poll(lambda: set(network.addresses()) == nodes | workload, 10, "no echo pod's address left on the link")


def test_a_pod_speaks_with_a_token_bound_to_it(lab: LabHandle, tmp_path: Path) -> None:
    """A pod's program gets a service-account token from the TokenRequest API, bound to that pod: the API server
    authenticates it as the pod's service account and names the pod."""
    ns = _namespace(lab, "whoami")
    out = tmp_path / "whoami.json"
    _apply(lab, _deployment("whoami", ns, 1, "lab.runtime.testprograms:WhoAmIProgram", {"OUT_FILE": str(out)}))
    answer = poll(lambda: out.exists() and json.loads(out.read_text()), 60, "the pod's SelfSubjectReview")
    assert answer["status"] == 201, answer
    user = answer["user"]
    assert user["username"] == f"system:serviceaccount:{ns}:default"
    pod = _core(lab).list_namespaced_pod(ns).items[0]
    assert user["extra"]["authentication.kubernetes.io/pod-name"] == [pod.metadata.name]
    assert user["extra"]["authentication.kubernetes.io/pod-uid"] == [pod.metadata.uid]


def test_a_paused_real_node_goes_not_ready_through_the_real_node_lifecycle(lab: LabHandle) -> None:
    """Pausing a real node's kubelet stops its lease renewals; kube-controller-manager marks it NotReady (Unknown)
    and the runtime's lab_nodes_ready counts one node fewer; once renewals resume the node and its pods are Ready."""
    def ready(status: str) -> bool:
        node = _core(lab).read_node("lab-node-1")
        return next(c.status for c in node.status.conditions if c.type == "Ready") == status

    def gauges() -> tuple[float, float]:
        text = httpx.get(lab.endpoints["runtime_metrics"], timeout=10).text
        values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                  if line.startswith(("lab_nodes_ready ", "lab_nodes "))}
        return values["lab_nodes_ready"], values["lab_nodes"]

    assert gauges() == (3, 3)  # one kwok node and two real nodes
    lab.control("lab-node-1", "pause")
    try:
        poll(lambda: ready("Unknown"), 30, "lab-node-1 NotReady (Unknown) after its lease expired")
        poll(lambda: gauges() == (2, 3), 10, "lab_nodes_ready at 2 of 3")
    finally:
        lab.control("lab-node-1", "resume")
    poll(lambda: ready("True"), 60, "lab-node-1 Ready again")
    poll(lambda: gauges() == (3, 3), 10, "lab_nodes_ready at 3 of 3 again")

    def pods_not_ready() -> list[str]:  # the controller marked them not Ready; the node's kubelet says otherwise
        pods = _core(lab).list_pod_for_all_namespaces(field_selector="spec.nodeName=lab-node-1").items
        return [p.metadata.name for p in pods if not any(c.type == "Ready" and c.status == "True"
                                                         for c in p.status.conditions or [])]

    poll(lambda: not pods_not_ready(), 30, "every pod on lab-node-1 Ready again")


def _pod_processes(state_dir: Path) -> list[str]:
    """Command lines of the processes a lab's kubelets run for its pods (CoreDNS, NodeLocal DNSCache)."""
    done = subprocess.run(["pgrep", "-a", "-f", f"coredns -conf {state_dir / 'pods'}/"], capture_output=True,
                          text=True, check=False)
    return done.stdout.splitlines()


def test_a_killed_runtime_takes_its_pods_processes_and_down_still_frees_the_slot(tmp_path: Path) -> None:
    """A SIGKILLed runtime takes every pod process it ran with it (none keeps a node address's port for the next
    lab), and `down` still removes the pod network and frees the slot."""
    require(os.geteuid() == 0, "the real nodes' pod network needs root (ip link/addr)")
    with running_control_plane(tmp_path / "lab", nodes=1, real_nodes=1) as handle:
        network = PodNetwork(handle.endpoints["slot"], 1)
        # the bridge holds the node's address and the pod IPs of the programs that run in the node's namespace
        # (the inference workload's); the sandboxed ones (CoreDNS) hold theirs in their own namespaces
        pods = client.CoreV1Api(handle.client()).list_namespaced_pod("inference").items
        in_node = {p.status.pod_ip for p in pods}
        assert network.exists() and set(network.addresses()) == {network.node_ip(0), *in_node}
        # kube-dns in sandboxes and NodeLocal DNSCache in the node's network: both kinds of pod process
        poll(lambda: len(_pod_processes(handle.state_dir)) >= 2, 30, "the CoreDNS and node-local-dns processes")
        runtime = handle.endpoints["pids"]["runtime"]
        os.kill(runtime, 9)
        poll(lambda: not _pod_processes(handle.state_dir), 15, "no pod process outliving the killed runtime")
    assert not network.exists()
    from lab.procs import pid_alive

    assert not pid_alive(runtime)
    assert not (tmp_path / "lab" / plane.POD_NETWORK_FILE).exists()


def _resolve(ip: str, name: str) -> list[str] | None:
    """The A records a DNS server at ip answers for name (None: no answer in time)."""
    import dns.exception
    import dns.message
    import dns.query

    try:
        answer = dns.query.udp(dns.message.make_query(name, "A"), ip, timeout=1.0)
    except (dns.exception.Timeout, OSError):
        return None
    return sorted(r.address for rrset in answer.answer for r in rrset if hasattr(r, "address"))


def _coredns_pods(lab: LabHandle) -> list[Any]:
    pods = _core(lab).list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns").items
    return [p for p in pods if p.metadata.deletion_timestamp is None and p.status.pod_ip
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]


def _coredns_processes(lab: LabHandle, pods: list[Any]) -> list[str]:
    """Command lines of the real CoreDNS processes this lab's kubelets run for these pods."""
    done = subprocess.run(["pgrep", "-a", "-f", f"coredns -conf {lab.state_dir / 'pods'}/"], capture_output=True,
                          text=True, check=False)
    dirs = [f"/pods/{p.metadata.uid}/" for p in pods]
    return [line for line in done.stdout.splitlines()
            if line.split()[1].endswith("/coredns") and any(d in line for d in dirs)]


def test_cluster_dns_is_the_real_coredns_answering_from_the_real_api_server(lab: LabHandle) -> None:
    """kube-system/coredns runs the built CoreDNS binary, one process per pod, each in its own network namespace on
    its pod IP; each answers Services' ClusterIPs from the real API server, and a new Service within seconds."""
    from kubernetes import client

    pods = poll(lambda: (p := _coredns_pods(lab)) and len(p) == 2 and p, 60, "two CoreDNS pods Ready")
    assert {p.spec.node_name for p in pods} <= set(REAL_NODES)
    assert len(_coredns_processes(lab, pods)) == 2
    kubernetes_ip = _core(lab).read_namespaced_service("kubernetes", "default").spec.cluster_ip
    for pod in pods:
        assert _resolve(pod.status.pod_ip, "kubernetes.default.svc.cluster.local") == [kubernetes_ip]
    dns_ip = lab.endpoints["dns"].split(":")[0]
    assert _core(lab).read_namespaced_service("kube-dns", "kube-system").spec.cluster_ip == dns_ip
    assert _resolve(dns_ip, "kubernetes.default.svc.cluster.local") == [kubernetes_ip]  # the Service's address
    ns = _namespace(lab, "dns-check")
    svc = client.V1Service(metadata=client.V1ObjectMeta(name="fresh"),
                           spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)]))
    ip = _core(lab).create_namespaced_service(ns, svc).spec.cluster_ip
    for pod in pods:
        poll(lambda a=pod.status.pod_ip: _resolve(a, f"fresh.{ns}.svc.cluster.local") == [ip], 30,
             f"{pod.metadata.name} to resolve the new Service")

    def counted() -> dict[str, float]:
        resp = httpx.get(lab.endpoints["prometheus"] + "/api/v1/query", timeout=10,
                         params={"query": 'sum by (pod) (coredns_dns_requests_total{job="pods", app="kube-dns"})'})
        return {r["metric"]["pod"]: float(r["value"][1]) for r in resp.json()["data"]["result"]}

    names = {p.metadata.name for p in pods}
    poll(lambda: set(counted()) == names and all(v >= 2 for v in counted().values()), 30,
         "Prometheus to scrape every CoreDNS pod's request counter (file discovery from the kubelets)")


def test_a_corefile_edit_is_read_by_the_real_reload_plugin(lab: LabHandle) -> None:
    """Editing the coredns ConfigMap reaches every pod's Corefile through its configMap volume, and CoreDNS's own
    reload plugin applies it: a hosts entry added to the ConfigMap is answered, and gone again once restored."""
    core = _core(lab)
    pods = poll(lambda: (p := _coredns_pods(lab)) and len(p) == 2 and p, 60, "two CoreDNS pods Ready")
    original = core.read_namespaced_config_map("coredns", "kube-system").data["Corefile"]
    edited = original.replace("    ready\n", "    ready\n    hosts {\n       203.0.113.250 canary.lab.test\n"
                                            "       fallthrough\n    }\n", 1)
    assert edited != original
    core.patch_namespaced_config_map("coredns", "kube-system", {"data": {"Corefile": edited}})
    try:
        for pod in pods:
            poll(lambda a=pod.status.pod_ip: _resolve(a, "canary.lab.test") == ["203.0.113.250"], 45,
                 f"{pod.metadata.name} to answer the hosts entry")
    finally:
        core.patch_namespaced_config_map("coredns", "kube-system", {"data": {"Corefile": original}})
    for pod in pods:
        poll(lambda a=pod.status.pod_ip: _resolve(a, "canary.lab.test") == [], 45,
             f"{pod.metadata.name} to forget the hosts entry")


def test_scaling_coredns_to_zero_stops_the_real_processes(lab: LabHandle) -> None:
    """Scaled to 0, every CoreDNS process stops, its sandbox goes and its address stops answering; scaled back to
    2, new processes answer again."""
    from kubernetes import client

    from lab.sandbox import sandboxes

    apps = client.AppsV1Api(lab.client())
    before = poll(lambda: (p := _coredns_pods(lab)) and len(p) == 2 and p, 60, "two CoreDNS pods Ready")
    apps.patch_namespaced_deployment_scale("coredns", "kube-system", {"spec": {"replicas": 0}})
    try:
        poll(lambda: not _coredns_processes(lab, before), 60, "every CoreDNS process gone")
        poll(lambda: not _core(lab).list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns").items, 60,
             "every CoreDNS pod gone")
        assert all(_resolve(p.status.pod_ip, "kubernetes.default.svc.cluster.local") is None for p in before)
        assert sandboxes(lab.endpoints["slot"]) == []
        dns_ip = lab.endpoints["dns"].split(":")[0]
        poll(lambda: _resolve(dns_ip, "kubernetes.default.svc.cluster.local") is None, 30,
             "kube-dns's address to stop answering")
    finally:
        apps.patch_namespaced_deployment_scale("coredns", "kube-system", {"spec": {"replicas": 2}})
    after = poll(lambda: (p := _coredns_pods(lab)) and len(p) == 2 and p, 60, "two CoreDNS pods Ready again")
    assert len(_coredns_processes(lab, after)) == 2
    for pod in after:
        assert _resolve(pod.status.pod_ip, "kubernetes.default.svc.cluster.local")
    poll(lambda: _resolve(lab.endpoints["dns"].split(":")[0], "kubernetes.default.svc.cluster.local"), 30,
         "kube-dns's address to answer again")


def test_services_of_pods_off_this_machine_are_not_fronted(lab: LabHandle) -> None:
    """A Service whose only endpoint is a kwok pod (an address in kwok's 10.244.0.0/16 that nothing here serves)
    gets no listener at its ClusterIP: the lab never forwards traffic off this machine."""
    ns = _namespace(lab, "kwok-only")
    deployment = _deployment("fake", ns, 1, "lab.runtime.testprograms:UdpEchoProgram", {})
    deployment["spec"]["template"]["spec"]["nodeSelector"] = {NODE_KIND_LABEL: "kwok"}
    _apply(lab, deployment, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "fake", "namespace": ns},
                             "spec": {"selector": {"app": "fake"}, "ports": [{"port": 80, "protocol": "TCP"}]}})
    core = _core(lab)

    def kwok_endpoint() -> bool:
        found = core.list_namespaced_endpoints(ns, field_selector="metadata.name=fake").items
        return any(a.ip.startswith("10.244.") for e in found for s in e.subsets or [] for a in s.addresses or [])

    poll(kwok_endpoint, 60, "the kwok pod's address in the Service's endpoints")
    ip = core.read_namespaced_service("fake", ns).spec.cluster_ip
    with socket.socket() as sock:
        sock.settimeout(2)
        assert sock.connect_ex((ip, 80)) != 0


def _ask_dns(ip: str, name: str) -> tuple[int, list[str], int | None] | None:
    """(rcode, A records, TTL of the first answer) from a DNS server at ip (None: no answer in time)."""
    import dns.exception
    import dns.message
    import dns.query

    try:
        answer = dns.query.udp(dns.message.make_query(name, "A"), ip, timeout=1.0)
    except (dns.exception.Timeout, OSError):
        return None
    records = sorted(r.address for rrset in answer.answer for r in rrset if hasattr(r, "address"))
    return answer.rcode(), records, answer.answer[0].ttl if answer.answer else None


def test_node_local_dns_serves_stale_answers_through_a_coredns_outage_only_with_serve_stale(lab: LabHandle) -> None:
    """NodeLocal DNSCache (the real CoreDNS in the node's network on each real node) answers through kube-dns. With
    CoreDNS scaled to 0 and the cached answer expired it answers SERVFAIL; with serve_stale switched on in its
    ConfigMap (applied by CoreDNS's reload plugin) the expired answer is served instead, with TTL 0."""
    import dns.rcode
    from kubernetes import client

    core, apps = _core(lab), client.AppsV1Api(lab.client())
    resolver = lab.endpoints["node_local_dns"]["lab-node-0"].split(":")[0]
    kube_dns = lab.endpoints["dns"].split(":")[0]
    name = "kubernetes.default.svc.cluster.local"
    kubernetes_ip = core.read_namespaced_service("kubernetes", "default").spec.cluster_ip
    poll(lambda: (a := _ask_dns(resolver, name)) and a[1] == [kubernetes_ip], 30, "node-local-dns answering")
    original = core.read_namespaced_config_map("node-local-dns", "kube-system").data["Corefile"]
    short = original.replace("success 9984 30", "success 9984 2").replace("denial 9984 5", "denial 9984 2")
    assert short != original

    def configure(corefile: str, marker: str) -> None:
        """Apply a Corefile with a hosts entry that tells when the reload plugin has read it."""
        edited = corefile.replace("    errors\n", f"    errors\n    hosts {{\n        {marker} reloaded.cluster.local\n"
                                  "        fallthrough\n    }\n", 1)
        assert marker in edited
        core.patch_namespaced_config_map("node-local-dns", "kube-system", {"data": {"Corefile": edited}})
        poll(lambda: (a := _ask_dns(resolver, "reloaded.cluster.local")) and a[1] == [marker], 45,
             f"node-local-dns to reload ({marker})")

    def outage() -> None:
        apps.patch_namespaced_deployment_scale("coredns", "kube-system", {"spec": {"replicas": 0}})
        poll(lambda: _resolve(kube_dns, name) is None, 60, "kube-dns to stop answering")

    def recover() -> None:
        apps.patch_namespaced_deployment_scale("coredns", "kube-system", {"spec": {"replicas": 2}})
        poll(lambda: _resolve(kube_dns, name) == [kubernetes_ip], 60, "kube-dns answering again")

    try:
        configure(short, "203.0.113.251")
        assert _ask_dns(resolver, name)[1] == [kubernetes_ip]  # cached, expiring 2 s later
        outage()
        poll(lambda: (a := _ask_dns(resolver, name)) and a[0] == dns.rcode.SERVFAIL, 30,
             "SERVFAIL once the cached answer expired")
        recover()
        with_stale = short.replace("denial 9984 2\n", "denial 9984 2\n        serve_stale 1h\n")
        assert "serve_stale" in with_stale
        configure(with_stale, "203.0.113.252")
        assert _ask_dns(resolver, name)[1] == [kubernetes_ip]
        outage()
        stale = poll(lambda: (a := _ask_dns(resolver, name)) and a[2] == 0 and a, 30, "a stale answer (TTL 0)")
        assert stale[0] == dns.rcode.NOERROR and stale[1] == [kubernetes_ip]
    finally:
        core.patch_namespaced_config_map("node-local-dns", "kube-system", {"data": {"Corefile": original}})
        recover()


def _storm_counts(lab: LabHandle, pod_prefix: str) -> dict[str, float]:
    """liststorm_requests_total by HTTP code, summed over the runtime's pods whose name starts with pod_prefix."""
    counts: dict[str, float] = {}
    for line in httpx.get(lab.endpoints["runtime_metrics"], timeout=10).text.splitlines():
        if line.startswith("liststorm_requests_total{") and f'pod="{pod_prefix}' in line:
            code = line.split('code="', 1)[1].split('"', 1)[0]
            counts[code] = counts.get(code, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def test_storm_pods_on_kwok_nodes_speak_as_their_own_service_account(lab: LabHandle) -> None:
    """A list-storm DaemonSet on kwok's node (which runs no process) sends its LISTs from the runtime with its pod's
    own service-account token: refused (403) while the account may not list configmaps, served (200) once a
    ClusterRoleBinding lets it, and silent after the DaemonSet is deleted."""
    ns = _namespace(lab, "kwok-storm")
    _apply(lab, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "telemetry", "namespace": ns}})
    _apply(lab, {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "storm", "namespace": ns},
        "spec": {"selector": {"matchLabels": {"app": "storm"}},
                 "template": {"metadata": {"labels": {"app": "storm"}},
                              "spec": {"serviceAccountName": "telemetry", "nodeSelector": {NODE_KIND_LABEL: "kwok"},
                                       "containers": [{"name": "storm", "image": "lab/list-storm",
                                                       "env": [{"name": "RESOURCE", "value": "configmaps"},
                                                               {"name": "RATE", "value": "5"}]}]}}}})
    poll(lambda: _storm_counts(lab, "storm-").get("403", 0) >= 3, 60, "the storm's LISTs refused by RBAC")
    assert _storm_counts(lab, "storm-").get("200", 0) == 0  # not the admin's token
    _apply(lab, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                 "metadata": {"name": "kwok-storm-reads"},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                 "subjects": [{"kind": "ServiceAccount", "name": "telemetry", "namespace": ns}]})
    poll(lambda: _storm_counts(lab, "storm-").get("200", 0) >= 3, 60, "the storm's LISTs served once allowed")
    pods = _core(lab).list_namespaced_pod(ns).items
    assert [p.spec.node_name for p in pods] == lab.endpoints["kwok_nodes"]
    assert lab.kubectl("-n", ns, "delete", "daemonset", "storm", "--wait=true", context="lab-admin").returncode == 0
    poll(lambda: not _core(lab).list_namespaced_pod(ns).items, 60, "the storm's pod gone")
    stopped = _storm_counts(lab, "storm-")  # the program stops when the pod starts terminating, before it is gone
    held = time.monotonic() + 3.0
    while time.monotonic() < held:
        assert _storm_counts(lab, "storm-") == stopped, "the storm kept listing after its pod was deleted"
        time.sleep(0.5)
