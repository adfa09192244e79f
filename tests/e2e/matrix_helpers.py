"""Helpers for the fault matrix (tests/e2e/test_fault_matrix.py): fault specs, blueprints, a switchable HTTP
health endpoint, an in-process runner over the lab, and an object-by-object snapshot of what faults touch."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.e2e.conftest import E2E, poll

CPU_NODE = "kwok-node-0"
"""The node node-cordon cordons (kwok's node on the real control plane: no pod of the lab's own runs there)."""

FAULTS: dict[str, dict[str, Any]] = {
    "coredns-scale-to-zero": {"kind": "coredns-outage", "mode": "scale-to-zero"},
    "coredns-block": {"kind": "coredns-outage", "mode": "block"},
    "coredns-corefile": {
        "kind": "coredns-outage",
        "mode": "corefile",
        "corefile": {"zones": ["cluster.local"], "action": "servfail"},
    },
    "pod-kill": {
        "kind": "pod-kill",
        "selector": {"namespaces": ["inference"], "label_selector": {"app": "model-server"}, "mode": "one"},
    },
    "node-cordon": {"kind": "node-cordon", "selector": {"names": [CPU_NODE], "mode": "one"}},
    "control-plane-overload": {
        "kind": "control-plane-overload",
        "mode": "client-storm",
        "resource": "configmaps",
        "rate": 1000,
        "concurrency": 400,
        "ramp_up": "1s",
        "break_glass": True,
    },
    # XID 13 (graphics engine exception: the catalogue says restart the app). Not 79: the lab's GPU monitor answers
    # 79 with a cordon, drain and node reboot that outlives the test and lands in the next test's "before".
    "gpu-xid": {"kind": "gpu-xid", "code": 13, "lease": "30s"},
}
"""Every fault kind that lands on the lab, by matrix id (the fault itself is always named ``f``)."""

RAISER: dict[str, Any] = {
    "kind": "chaostoolkit",
    "name": "boom",
    "action": {
        "type": "action",
        "name": "explode",
        "provider": {"type": "python", "module": "tests.e2e.matrix_helpers", "func": "explode"},
    },
}
"""A second fault whose inject raises (a Chaos Toolkit python action that fails)."""


STORM_DATA_NS = "mx-storm-data"
"""Where storm_data() puts the ConfigMaps that make each storm LIST expensive."""


@contextmanager
def storm_data(e2e: E2E, count: int = 1000) -> Iterator[None]:
    """``count`` ConfigMaps in STORM_DATA_NS (cluster-wide LISTs then cost real seats); namespace deleted after."""
    from concurrent.futures import ThreadPoolExecutor

    from kubernetes import client

    core: Any = client.CoreV1Api(e2e.lab.client())
    core.create_namespace({"metadata": {"name": STORM_DATA_NS}})
    try:

        def make(i: int) -> None:
            core.create_namespaced_config_map(
                STORM_DATA_NS, {"metadata": {"name": f"cm-{i}"}, "data": {"x": "y" * 200}}
            )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(make, range(count)))
        yield
    finally:
        core.delete_namespace(STORM_DATA_NS)
        poll(
            lambda: STORM_DATA_NS not in {n.metadata.name for n in core.list_namespace().items},
            60,
            f"namespace {STORM_DATA_NS} to be deleted",
        )


def explode() -> None:
    """The Chaos Toolkit action of RAISER: always fails."""
    raise RuntimeError("matrix: the second fault's inject fails on purpose")


def blueprint(
    name: str, fault: str, *, observe: str = "2s", guard_url: str | None = None, raiser: bool = False
) -> str:
    """A one-stage campaign YAML injecting FAULTS[fault] (plus RAISER), optionally guarded by an HTTP probe."""
    faults: list[dict[str, Any]] = [{**FAULTS[fault], "name": "f"}]
    if raiser:
        faults.append(RAISER)
    data: dict[str, Any] = {
        "name": name,
        "owner": "tests",
        "hypothesis": {"belief": "nothing", "expectations": ["api_up >= 0 during fault"]},
        "target": {
            "cluster": "lab",
            "namespaces": ["kube-system", "inference", "gameday-storm"],
            "blast_radius": {"max_nodes": 1, "max_pods": 3},
        },
        "observables": [{"name": "api_up", "query": "count(up)"}],
        "baseline": "0s",
        "stages": [{"name": "s", "faults": faults, "observe": observe, "recovery": "0s"}],
    }
    if guard_url is not None:
        data["guardrails"] = [
            {
                "name": "switch",
                "every": "0.2s",
                "probe": {"name": "switch", "type": "http", "url": guard_url, "timeout": "1s"},
            }
        ]
    return yaml.safe_dump(data, sort_keys=False)


class _Switch(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = 200 if getattr(self.server, "healthy", True) else 500
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok" if code == 200 else b"no")

    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class Switch:
    """A local HTTP endpoint answering 200 until ``fail()`` is called, then 500."""

    server: http.server.ThreadingHTTPServer

    @property
    def url(self) -> str:
        """Its URL."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/healthz"

    def fail(self) -> None:
        """From now on answer 500."""
        self.server.healthy = False  # type: ignore[attr-defined]


@contextmanager
def switch() -> Iterator[Switch]:
    """A running Switch, shut down on exit."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Switch)
    server.healthy = True  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Switch(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class Outcome:
    """What an in-process run returned and recorded."""

    status: str
    faults: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


def run_inprocess(e2e: E2E, tmp_path: Path, text: str, run_id: str, on_verified: Any = None) -> Outcome:
    """Run a campaign with CampaignRunner (no Prefect) against the lab; ``on_verified()`` after any verify."""
    from blueprints import parse
    from tasks.run.connect import connect
    from tasks.run.recorder import Recorder
    from tasks.run.runner import CampaignRunner
    from tasks.settings import Settings

    campaign = parse(text)
    settings = Settings(state_dir=tmp_path / "state", lab_state_dir=e2e.lab.state_dir)
    conn = connect(campaign, settings, run_id, log=lambda m: None)

    def listener(event: Any) -> None:
        if on_verified is not None and getattr(event, "kind", "") in ("verified", "verify-failed"):
            on_verified()

    recorder = Recorder(run_id, [listener])
    try:
        status = CampaignRunner(campaign, conn.ctx, conn.ops, recorder).run()
    finally:
        conn.close()
    stage = recorder.stages[0]
    return Outcome(status, {f.id: f for f in stage.faults}, stage.reason or "")


# -- snapshots -------------------------------------------------------------------------------------------


def _apis(e2e: E2E) -> tuple[Any, Any, Any, Any]:
    from kubernetes import client

    api = e2e.lab.client()
    return (client.CoreV1Api(api), client.AppsV1Api(api), client.FlowcontrolApiserverV1Api(api),
            client.NetworkingV1Api(api))


def storm_tags() -> list[str]:
    """Tags of live client-storm processes on this machine."""
    from tasks.faults.storm_process import MODULE

    tags: list[str] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue
        if MODULE in args and "--tag" in args and args.index("--tag") + 1 < len(args):
            tags.append(args[args.index("--tag") + 1])
    return sorted(tags)


def agent_faults(e2e: E2E) -> dict[str, list[str]]:
    """Active fault ids held by each GPU node agent (GET /v1/faults)."""
    out: dict[str, list[str]] = {}
    for node, url in sorted(e2e.lab.endpoints.get("gpu_agents", {}).items()):
        body = httpx.get(f"{url.rstrip('/')}/v1/faults", headers={"Authorization": f"Bearer {e2e.lab.agent_token}"},
                         timeout=10).raise_for_status().json()
        out[node] = sorted(str(f["fault_id"]) for f in body.get("faults", []) if f.get("state") == "active")
    return out


def raw_state(e2e: E2E) -> dict[str, Any]:
    """The touched state as it is now (unsettled)."""
    core, apps, flow, net = _apis(e2e)
    deployments: dict[str, Any] = {}
    pods: dict[str, int] = {}
    for d in apps.list_deployment_for_all_namespaces().items:
        key = f"{d.metadata.namespace}/{d.metadata.name}"
        deployments[key] = d.spec.replicas
        labels = ",".join(f"{k}={v}" for k, v in sorted((d.spec.selector.match_labels or {}).items()))
        listed = core.list_namespaced_pod(d.metadata.namespace, label_selector=labels).items
        pods[key] = sum(
            1 for p in listed if p.status.phase == "Running" and not p.metadata.deletion_timestamp
        )
    nodes = {
        n.metadata.name: {
            "unschedulable": bool(n.spec.unschedulable),
            "taints": sorted((t.key, t.value, t.effect) for t in (n.spec.taints or [])),
        }
        for n in core.list_node().items
    }
    coredns = core.read_namespaced_config_map("coredns", "kube-system").data
    storm_ns = [n.metadata.name for n in core.list_namespace().items if "storm" in n.metadata.name]
    daemonsets = sorted(
        f"{ns}/{d.metadata.name}" for ns in storm_ns for d in apps.list_namespaced_daemon_set(ns).items
    )
    return {
        "deployments": deployments,
        "pods": pods,
        "nodes": nodes,
        "coredns_configmap": coredns,
        "flowschemas": sorted(
            f.metadata.name for f in flow.list_flow_schema().items if f.metadata.name.startswith("gameday-")
        ),
        "priority_levels": sorted(
            p.metadata.name
            for p in flow.list_priority_level_configuration().items
            if p.metadata.name.startswith("gameday-")
        ),
        "storm_daemonsets": daemonsets,
        "network_policies": sorted(
            f"{p.metadata.namespace}/{p.metadata.name}"
            for p in net.list_network_policy_for_all_namespaces().items
            if p.metadata.name.startswith("gameday-")
        ),
        "storm_processes": storm_tags(),
        "agent_faults": agent_faults(e2e),
    }


def snapshot(e2e: E2E, timeout: float = 60) -> dict[str, Any]:
    """The state faults touch, once settled (every Deployment's running pods equal its replicas)."""

    def settled() -> dict[str, Any] | None:
        raw = raw_state(e2e)
        return raw if raw["pods"] == raw["deployments"] else None

    result: dict[str, Any] = poll(
        settled, timeout, "every Deployment's pods to match its replicas", interval=0.5
    )
    return result


def assert_restored(e2e: E2E, before: dict[str, Any], timeout: float = 60) -> None:
    """Poll until the snapshot equals ``before``; then assert it key by key (precise failure message)."""
    import time

    deadline = time.monotonic() + timeout
    after = raw_state(e2e)
    while after != before and time.monotonic() < deadline:
        time.sleep(0.5)
        after = raw_state(e2e)
    for key, value in before.items():
        assert after[key] == value, f"{key} not restored: before {value!r}, after {after[key]!r}"
