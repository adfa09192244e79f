"""``lab up``: start, inspect and stop the real Kubernetes control plane of a lab.

``up`` writes the lab's PKI, identities and kubeconfigs into the state dir, then starts etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok (each recorded in ``pids.json`` as soon as it starts, so
``down`` can always stop it), registers the kwok nodes, with ``real_nodes`` makes the slot's pod network and
starts the runtime that runs the lab's own nodes (``lab.runtime --real-plane``), and starts Prometheus on every
component's metrics. It
returns once every component is healthy, every node is Ready and Prometheus has data; otherwise it stops
everything it started and raises ``LabStartError`` with the failing component's log tail.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import ssl
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import yaml

from lab import prometheus
from lab.control import components, kwok, pki
from lab.control.components import DEFAULT_SERVICE_CIDR, LOOPBACK, ORDER, ControlPlaneOptions, Layout, Ports
from lab.control.readiness import (
    await_condition,
    daemonset_waiting,
    deployment_waiting,
    healthy,
    kubectl,
    node_ready,
    nodes_waiting,
    service_account_waiting,
)
from lab.control.users import ADMIN, RUNNER, make_users, token_for, write_users
from lab.errors import LabError, LabStartError
from lab.gpu import launch
from lab.network import PodNetwork
from lab.procs import (
    forget_pids,
    kill_processes_under,
    log_tail,
    pid_alive,
    read_pids,
    record_pid,
    spawn,
    start_runtime,
    stop_pid,
)
from lab.runtime import slots
from lab.runtime.scrape import SCRAPE_TARGETS
from lab.sandbox import remove_sandboxes

MANIFESTS = Path(__file__).resolve().parent / "manifests"
REAL_NODE_PREFIX = "lab-node"
GPU_NODE_PREFIX = "gpu-node"
GPU_ADDON = Path(__file__).resolve().parent / "addons" / "gpu" / "agents.yaml"
JANITOR_MANIFEST = Path(__file__).resolve().parents[2] / "agents" / "manifests" / "30-janitor.yaml"
"""gameday's stock janitor (the dead-man switch), applied as shipped but for a nodeSelector for the real nodes."""
"""The GPU side's service accounts and RBAC (applied with GPU nodes)."""
POD_NETWORK_FILE = "pod-network.json"
KWOK_USER = "kwok-controller"
MONITOR_USER = "prometheus"
CONTROL_PLANE_USERS: dict[str, list[str]] = {
    "system:kube-controller-manager": [],
    "system:kube-scheduler": [],
    KWOK_USER: ["system:nodes"],
    MONITOR_USER: ["system:monitoring"],
}
"""Identities beyond admin (system:masters) and gameday-runner, with their groups."""
COMPONENT_IDENTITY = {"kube-controller-manager": "system:kube-controller-manager",
                      "kube-scheduler": "system:kube-scheduler", "kwok": KWOK_USER}
BINARIES = (*ORDER, "kubectl", "coredns")
ADDONS = Path(__file__).resolve().parent / "addons"
INFERENCE = ("model-server", "gateway", "loadgen")
"""The inference workload's Deployments (addons/inference.yaml), awaited by up."""


def _free_ports() -> Ports:
    return Ports(*(prometheus.free_port() for _ in range(6)))


def _write_secrets(layout: Layout, opts: ControlPlaneOptions) -> dict[str, dict[str, Any]]:
    """PKI, tokens and every kubeconfig; returns the users mapping (token -> identity)."""
    ca = pki.new_ca(layout.pki)
    service_ip = _first_service_ip(opts.service_cidr)
    pki.serving_cert(ca, layout.pki, "kube-apiserver", [
        *dict.fromkeys([layout.apiserver_host, "127.0.0.1"]), "localhost", service_ip, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local"])
    for name in ("kube-controller-manager", "kube-scheduler"):
        pki.serving_cert(ca, layout.pki, name, ["127.0.0.1", "localhost"])
    pki.service_account_keys(layout.pki)
    users = make_users([*lab_node_names(opts), *opts.node_identities],
                       {**{k: list(v) for k, v in CONTROL_PLANE_USERS.items()},
                        **{name: list(groups) for name, groups in opts.identities}})
    write_users(layout.state_dir / "users.json", users)
    layout.tokens_csv.write_text(components.tokens_csv(users))
    layout.tokens_csv.chmod(0o600)
    url = layout.apiserver_url
    components.write_kubeconfig(layout.state_dir / "kubeconfig", components.kubeconfig(
        url, ca.cert, {"lab": token_for(users, RUNNER), "lab-admin": token_for(users, ADMIN)}))
    for component, identity in COMPONENT_IDENTITY.items():
        components.write_kubeconfig(layout.kubeconfig(component),
                                    components.kubeconfig(url, ca.cert, {component: token_for(users, identity)}))
    token_file = layout.pki / "prometheus-token"
    token_file.write_text(token_for(users, MONITOR_USER))
    token_file.chmod(0o600)
    return users


def real_node_names(count: int) -> list[str]:
    """The names of a lab's own (real) nodes."""
    return [f"{REAL_NODE_PREFIX}-{i}" for i in range(count)]


def gpu_node_names(count: int) -> list[str]:
    """The names of a lab's GPU nodes."""
    return [f"{GPU_NODE_PREFIX}-{i}" for i in range(count)]


def lab_node_names(opts: ControlPlaneOptions) -> list[str]:
    """Every node the lab's runtime runs, in the order of their addresses: the real nodes, then the GPU nodes."""
    return real_node_names(opts.real_nodes) + gpu_node_names(opts.gpu_nodes)


def _claim_network(state: Path, opts: ControlPlaneOptions) -> PodNetwork:
    """Claim an address slot and make its pod network for the real nodes (remembered for ``down``)."""
    slot = slots.claim(state, opts.slot)
    (state / POD_NETWORK_FILE).write_text(json.dumps({"slot": slot, "nodes": opts.lab_nodes}))
    network = PodNetwork(slot, opts.lab_nodes)
    network.create()
    return network


def _release_network(state: Path) -> None:
    """Delete the pod network's link (every address on it) and release the slot; idempotent."""
    try:
        slot = int(json.loads((state / POD_NETWORK_FILE).read_text())["slot"])
    except (OSError, ValueError, KeyError):
        return
    remove_sandboxes(slot)
    PodNetwork(slot).destroy()
    slots.release(state)
    (state / POD_NETWORK_FILE).unlink(missing_ok=True)


def _start_real_nodes(layout: Layout, opts: ControlPlaneOptions, network: PodNetwork,
                      deadline: float) -> dict[str, Any]:
    """Start the runtime that runs the real nodes (kubelets and leases as each node's own identity)."""
    state = layout.state_dir
    proc, info = start_runtime(
        state, layout.apiserver_url, state / "users.json", opts.lab_nodes, opts.gpu_nodes, slot=network.slot,
        timeout=max(deadline - time.monotonic(), 10),
        extra=["--ca-file", str(layout.ca.cert), "--node-prefix", REAL_NODE_PREFIX,
               "--gpu-node-prefix", GPU_NODE_PREFIX,
               "--node-lease-seconds", str(opts.node_lease_seconds), "--pods-dir", str(state / "pods"),
               "--binary", f"coredns={layout.binaries['coredns']}"])
    record_pid(state, "runtime", proc.pid)
    return info


def _start_gpu(layout: Layout, opts: ControlPlaneOptions, runtime: dict[str, Any], admin: str,
               deadline: float) -> dict[str, Any]:
    """The GPU side for the GPU nodes: its identities (service accounts with TokenRequest tokens, RBAC), the agents,
    exporter and monitor (``python -m lab.gpu``, PIDs recorded) and the GPU workload, awaited."""
    state = layout.state_dir
    kubectl(layout, "apply", "-f", str(GPU_ADDON))
    tokens = {sa: kubectl(layout, "create", "token", sa.split(":")[-1], "-n", sa.split(":")[-2], "--duration", "48h")
              .strip() for sa in (launch.AGENT_USER, launch.MONITOR_USER)}
    proc = launch.spawn_stack(state, layout.apiserver_url, runtime["url"], gpu_node_names(opts.gpu_nodes),
                              opts.training, tokens[launch.AGENT_USER], tokens[launch.MONITOR_USER],
                              ca_file=layout.ca.cert, reboot_seconds=opts.gpu_reboot_seconds)
    record_pid(state, "gpu", proc.pid)
    info = launch.wait_stack(state, proc, max(deadline - time.monotonic(), 10))
    for node, pid in (info.get("agent_pids") or {}).items():
        record_pid(state, f"gpu-agent-{node}", int(pid))
    kubectl(layout, "apply", "-f", str(launch.MANIFEST))
    await_condition(lambda: deployment_waiting(layout, admin, "gpu-training", "trainer"), deadline,
           "gpu-training/trainer on the GPU nodes", log=layout.log("runtime"))
    return info


def addons(opts: ControlPlaneOptions) -> list[dict[str, Any]]:
    """The add-ons of a lab with real nodes (cluster DNS, NodeLocal DNSCache, the inference workload), with kube-dns
    at the service range's tenth address."""
    dns_ip = kube_dns_ip(opts)
    text = "\n---\n".join(p.read_text() for p in sorted(ADDONS.glob("*.yaml"))).replace("__KUBE_DNS__", dns_ip)
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        if doc["kind"] == "Service" and doc["metadata"]["name"] == "kube-dns":
            doc["spec"]["clusterIP"] = dns_ip
    return docs


def janitor_manifest() -> list[dict[str, Any]]:
    """agents/manifests/30-janitor.yaml with its Deployment's pod on the lab's real nodes (kwok's run no process)."""
    docs = [d for d in yaml.safe_load_all(JANITOR_MANIFEST.read_text()) if d]
    for doc in docs:
        if doc["kind"] == "Deployment":
            doc["spec"]["template"]["spec"]["nodeSelector"] = {"gameday.dev/node-kind": "real"}
    return docs


def kube_dns_ip(opts: ControlPlaneOptions) -> str:
    """The kube-dns Service's ClusterIP: the service range's tenth address."""
    return str(ipaddress.ip_network(opts.service_cidr).network_address + 10)


def _first_service_ip(cidr: str) -> str:
    return str(next(ipaddress.ip_network(cidr).hosts()))


SUPERVISED = ("kube-apiserver",)
"""Components run under ``lab.control.supervisor`` (restarted with back-off, optionally in a memory cgroup)."""


def supervisor_status(layout: Layout, name: str) -> dict[str, Any] | None:
    """A supervised component's status file (None until the supervisor wrote it)."""
    try:
        status: dict[str, Any] = json.loads(layout.supervisor_status(name).read_text())
    except (OSError, ValueError):
        return None
    return status


def _start(layout: Layout, opts: ControlPlaneOptions, name: str, deadline: float) -> None:
    layout.supervisor_status(name).unlink(missing_ok=True)
    proc = spawn(components.argv(name, layout, opts), layout.log(name), cwd=layout.state_dir)
    record_pid(layout.state_dir, name, proc.pid)
    url = layout.health_url(name)

    def check() -> str | None:
        if name in SUPERVISED:
            status = supervisor_status(layout, name)
            if status is None:
                return "its supervisor has not started it yet"
            if status["last_exit"]:
                raise LabStartError(f"{name} healthy: exited ({status['last_exit']}) before it was ready\n"
                                    f"{log_tail(layout.log(name))}")
        return None if healthy(url, layout.ca.cert) else f"{url} not answering 200"

    await_condition(check, deadline, f"{name} healthy", proc, layout.log(name))


def _pods_job(state: Path) -> dict[str, Any]:
    """The real nodes' pods that ask to be scraped (``prometheus.io/scrape``: CoreDNS's :9153), from the targets file
    their kubelets keep (Debian's Prometheus has no Kubernetes service discovery: file discovery instead)."""
    return {"job_name": "pods", "file_sd_configs": [{"files": [str(state / "pods" / SCRAPE_TARGETS)],
                                                      "refresh_interval": "1s"}]}


def _scrape_jobs(layout: Layout, runtime: dict[str, Any] | None) -> list[dict[str, Any]]:
    token, ca = layout.pki / "prometheus-token", layout.ca.cert
    return [*([prometheus.scrape_job("runtime", runtime["url"] + "/metrics"), _pods_job(layout.state_dir)]
              if runtime else []),
        prometheus.scrape_job("apiserver", layout.metrics_url("kube-apiserver"), token, ca),
        prometheus.scrape_job("etcd", layout.metrics_url("etcd")),
        prometheus.scrape_job("kube-controller-manager", layout.metrics_url("kube-controller-manager"), None, ca),
        prometheus.scrape_job("kube-scheduler", layout.metrics_url("kube-scheduler"), None, ca),
        prometheus.scrape_job("kwok", layout.metrics_url("kwok")),
        *(prometheus.scrape_job(f"{name}-supervisor", str(status["metrics"])) for name in SUPERVISED
          if (status := supervisor_status(layout, name))),
    ]


def check_binaries(binaries: dict[str, Path]) -> None:
    """LabError naming every control-plane binary that is missing (before anything starts)."""
    missing = [name for name in BINARIES if name not in binaries or not Path(binaries[name]).exists()]
    if missing:
        raise LabError(f"missing lab components {missing}: run `python -m lab build`")


def up(opts: ControlPlaneOptions, binaries: dict[str, Path]) -> dict[str, Any]:
    """Start the real control plane with kwok's nodes and Prometheus; returns the endpoints once all is Ready."""
    problems = opts.problems()
    if problems:
        raise LabError("the control plane's knobs cannot work:\n  " + "\n  ".join(problems))
    check_binaries(binaries)
    state = opts.state_dir
    state.mkdir(parents=True, exist_ok=True)
    alive = {k: p for k, p in read_pids(state).items() if pid_alive(p)}
    if alive:
        raise LabError(f"a lab is already running from {state} ({alive}); run `python -m lab down` first")
    forget_pids(state)
    for stale in ("etcd-data", "prometheus-data", "pki", "kubeconfigs"):
        shutil.rmtree(state / stale, ignore_errors=True)
    deadline = time.monotonic() + opts.timeout
    runtime: dict[str, Any] | None = None
    network: PodNetwork | None = None
    gpu: dict[str, Any] = {}
    try:
        if opts.lab_nodes:
            network = _claim_network(state, opts)
            if opts.service_cidr == DEFAULT_SERVICE_CIDR:  # Services the lab's runtime can front (see README)
                opts = replace(opts, service_cidr=f"{slots.service_prefix(network.slot)}0/16")
        # with real nodes, the API server listens on lab-node-0's address (a control-plane node's InternalIP), so
        # the pods in their own network namespaces (lab/sandbox.py) reach it as pods in a cluster do
        host = network.node_ip(0) if network is not None else LOOPBACK
        layout = Layout(state, _free_ports(), dict(binaries), apiserver_host=host)
        users = _write_secrets(layout, opts)
        admin = token_for(users, ADMIN)
        kwok.write_config(layout.kwok_config)
        for name in ORDER[:2]:
            _start(layout, opts, name, deadline)
        kubectl(layout, "apply", "-f", str(MANIFESTS))
        if opts.api_only:
            return _endpoints(opts, layout, binaries, None, None, {}, None)
        for name in ORDER[2:]:
            _start(layout, opts, name, deadline)
        nodes = [kwok.node(n, kwok.node_ip(i)) for i, n in enumerate(kwok.node_names(opts.nodes))]
        if nodes:
            kubectl(layout, "apply", "-f", "-", stdin=yaml.safe_dump_all(nodes), timeout=max(60.0, opts.nodes / 5))
        if network is not None:
            runtime = _start_real_nodes(layout, opts, network, deadline)
        await_condition(lambda: nodes_waiting(layout, admin, opts.nodes + opts.lab_nodes), deadline,
               "kwok's and the lab's nodes Ready", log=layout.log("runtime" if network else "kwok"))
        await_condition(lambda: service_account_waiting(layout, admin), deadline, "service accounts",
               log=layout.log("kube-controller-manager"))
        if network is not None:
            kubectl(layout, "apply", "-f", "-", stdin=yaml.safe_dump_all(addons(opts)))
            await_condition(lambda: deployment_waiting(layout, admin, "kube-system", "coredns"), deadline,
                   "CoreDNS on the real nodes", log=layout.log("runtime"))
            await_condition(lambda: daemonset_waiting(layout, admin, "kube-system", "node-local-dns", opts.lab_nodes), deadline,
                   "NodeLocal DNSCache on every real node", log=layout.log("runtime"))
            for name in INFERENCE:
                await_condition(partial(deployment_waiting, layout, admin, "inference", name), deadline,
                       f"inference/{name} on the real nodes", log=layout.log("runtime"))
        if network is not None and runtime is not None and opts.gpu_nodes:
            gpu = _start_gpu(layout, opts, runtime, admin, deadline)
        if network is not None and opts.janitor:
            kubectl(layout, "apply", "-f", "-", stdin=yaml.safe_dump_all(janitor_manifest()))
            await_condition(lambda: deployment_waiting(layout, admin, "gameday", "gameday-janitor"), deadline,
                   "gameday/gameday-janitor on a real node", log=layout.log("runtime"))
        jobs = _scrape_jobs(layout, runtime) + [prometheus.scrape_job(name, url) for name, url in
                                                 (launch.scrape_jobs(gpu) if gpu else {}).items()]
        port = prometheus.free_port()
        config = prometheus.write_jobs_config(state, port, jobs)
        prom, prom_url = prometheus.launch(state, config, port, (*(j["job_name"] for j in jobs), "prometheus"),
                                           max(deadline - time.monotonic(), 10))
        record_pid(state, "prometheus", prom.pid)
    except BaseException:
        down(state)
        raise
    return _endpoints(opts, layout, binaries, network, runtime, gpu, prom_url)


def _endpoints(opts: ControlPlaneOptions, layout: Layout, binaries: dict[str, Path], network: PodNetwork | None,
               runtime: dict[str, Any] | None, gpu: dict[str, Any], prom_url: str | None) -> dict[str, Any]:
    """Write and return endpoints.json: where every part of a lab that is up listens."""
    state = layout.state_dir
    started = ORDER[:2] if opts.api_only else ORDER
    endpoints = {
        "control_plane": "real",
        "apiserver": layout.apiserver_url, "apiserver_https": layout.apiserver_url, "ca_file": str(layout.ca.cert),
        "etcd": layout.etcd_url, "prometheus": prom_url,
        "metrics": {name: layout.metrics_url(name) for name in started},
        "supervisors": {name: str(layout.supervisor_status(name)) for name in SUPERVISED},
        "kubeconfig": str(state / "kubeconfig"), "users": str(state / "users.json"),
        "kubectl": str(binaries["kubectl"]), "nodes": opts.nodes, "gpu_nodes": opts.gpu_nodes,
        "kwok_nodes": kwok.node_names(opts.nodes), "pids": read_pids(state),
        "real_nodes": real_node_names(opts.real_nodes), "gpu_node_names": gpu_node_names(opts.gpu_nodes),
        "gpu_exporter": gpu.get("exporter"), "gpu_monitor": gpu.get("monitor"),
        "gpu_agents": gpu.get("agents") or {}, "training": gpu.get("training") or {},
        "training_metrics": (gpu.get("training") or {}).get("metrics"),
        **({"slot": network.slot, "pod_network": str(network.cidr), "runtime": runtime["url"],
            "dns": f"{kube_dns_ip(opts)}:53", "service_cidr": opts.service_cidr,
            "node_local_dns": {name: f"{network.node_ip(i)}:53" for i, name in enumerate(lab_node_names(opts))},
            "runtime_metrics": runtime["url"] + "/metrics"} if network is not None and runtime is not None else {}),
        "knobs": {k: v for k, v in vars(opts).items() if k not in ("state_dir", "timeout")},
    }
    (state / "endpoints.json").write_text(json.dumps(endpoints, indent=1))
    return endpoints


def down(state: Path, grace: float = 10.0) -> dict[str, int]:
    """Stop Prometheus, then the components in reverse start order (SIGTERM, SIGKILL after grace); idempotent."""
    pids = read_pids(state)
    # the GPU agents revert and unannotate, and the real nodes' pods stop, while the API is up
    first = ("gpu", *sorted(n for n in pids if n.startswith("gpu-agent-")), "runtime", "prometheus", *reversed(ORDER))
    for name in first:
        if name in pids:
            stop_pid(pids[name], grace)
    for name, pid in reversed(pids.items()):
        if name not in first:
            stop_pid(pid, grace)
    kill_processes_under(state / "pods")  # a runtime that died (or was killed) before it stopped its pods
    _remove_cgroups(state)
    _release_network(state)
    (state / "runtime-ready.json").unlink(missing_ok=True)
    (state / "gpu-ready.json").unlink(missing_ok=True)
    forget_pids(state)
    (state / "endpoints.json").unlink(missing_ok=True)
    return pids


def _remove_cgroups(state: Path, timeout: float = 10.0) -> None:
    """Remove a memory cgroup a supervisor left behind (it removes its own unless it was SIGKILLed)."""
    for path in state.glob("*.supervisor.json"):
        try:
            cgroup = json.loads(path.read_text()).get("cgroup")
        except (OSError, ValueError):
            continue
        if not cgroup or not Path(cgroup).exists():
            continue
        deadline = time.monotonic() + timeout
        while True:
            try:
                Path(cgroup).rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as err:  # still holds a process that is exiting
                if time.monotonic() > deadline:
                    raise LabError(f"cannot remove the memory cgroup {cgroup}: {err}") from err
                time.sleep(0.1)


def status(state: Path) -> dict[str, Any]:
    """Components with PIDs and liveness, plus node and pod counts when the API server answers."""
    pids = read_pids(state)
    result: dict[str, Any] = {
        "state_dir": str(state), "control_plane": "real",
        "components": {name: {"pid": pid, "alive": pid_alive(pid)} for name, pid in pids.items()},
    }
    try:
        endpoints = json.loads((state / "endpoints.json").read_text())
        users = json.loads((state / "users.json").read_text())
    except (OSError, ValueError):
        return result
    result["endpoints"] = endpoints
    for name, path in (endpoints.get("supervisors") or {}).items():
        try:
            result["components"][name]["supervisor"] = json.loads(Path(path).read_text())
        except (OSError, ValueError, KeyError):
            pass
    headers = {"Authorization": f"Bearer {token_for(users, ADMIN)}"}
    try:
        with httpx.Client(base_url=endpoints["apiserver"], headers=headers, timeout=5,
                          verify=ssl.create_default_context(cafile=endpoints["ca_file"])) as http:
            def get(path: str) -> list[dict[str, Any]]:
                resp = http.get(path)
                resp.raise_for_status()
                items: list[dict[str, Any]] = resp.json()["items"]
                return items

            nodes = get("/api/v1/nodes")
            result["nodes"] = {"total": len(nodes), "ready": sum(1 for n in nodes if node_ready(n))}
            phases: dict[str, int] = {}
            for pod in get("/api/v1/pods"):
                phase = pod.get("status", {}).get("phase", "Unknown")
                phases[phase] = phases.get(phase, 0) + 1
            result["pods"] = phases
    except (httpx.HTTPError, KeyError, ValueError) as err:
        result["api_error"] = repr(err)
    return result
