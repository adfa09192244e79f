"""Waiting for the real control plane's lab to be ready: health endpoints, nodes, workloads, and the lab's kubectl.

Each ``*_waiting`` check returns None when its condition holds, else a sentence saying what is still awaited, which
``await_condition`` polls until a deadline (failing with the component's log tail).
"""

from __future__ import annotations

import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from lab.control.components import Layout
from lab.errors import LabError, LabStartError
from lab.procs import log_tail

API_ERRORS = (httpx.HTTPError, ValueError)
"""What :func:`api_get` raises when the API server cannot answer: no connection, an error status, not JSON."""


def deployment_waiting(layout: Layout, token: str, namespace: str, name: str) -> str | None:
    """None once the Deployment has all its replicas ready, else what is still awaited."""
    try:
        dep = api_get(layout, token, f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    except API_ERRORS as err:
        return f"{namespace}/{name}: {err}"
    want, ready = dep["spec"].get("replicas", 1), dep.get("status", {}).get("readyReplicas", 0)
    return None if ready == want else f"{namespace}/{name}: {ready}/{want} replicas ready"


def daemonset_waiting(layout: Layout, token: str, namespace: str, name: str, want: int) -> str | None:
    """None once the DaemonSet has ``want`` pods ready, else what is still awaited."""
    try:
        ds = api_get(layout, token, f"/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}")
    except API_ERRORS as err:
        return f"{namespace}/{name}: {err}"
    ready = ds.get("status", {}).get("numberReady", 0)
    return None if ready == want else f"{namespace}/{name}: {ready}/{want} pods ready"


def healthy(url: str, ca: Path, token: str | None = None) -> bool:
    """Whether the health endpoint answers 200."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = httpx.get(url, verify=ssl.create_default_context(cafile=ca), headers=headers, timeout=2)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200


def await_condition(check: Callable[[], str | None], deadline: float, what: str,
           proc: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    """Poll check (None = done, else what is still awaited) until the deadline; fail at once if proc dies."""
    last: str | None = what
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise LabStartError(f"{what}: exited with code {proc.returncode}\n{log_tail(log) if log else ''}")
        last = check()
        if last is None:
            return
        time.sleep(0.2)
    raise LabStartError(f"timed out waiting for {what}: {last}\n{log_tail(log) if log else ''}")


def kubectl(layout: Layout, *args: str, stdin: str | None = None, context: str = "lab-admin",
            timeout: float = 60.0) -> str:
    """Run the lab's kubectl against it (admin unless another context is named); LabError on failure."""
    cmd = [str(layout.binaries.get("kubectl", "kubectl")), "--kubeconfig", str(layout.state_dir / "kubeconfig"),
           "--context", context, *args]
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise LabError(f"kubectl {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def api_get(layout: Layout, token: str, path: str) -> dict[str, Any]:
    """GET a path of the lab's API server as ``token``; raises one of ``API_ERRORS`` when it cannot answer."""
    resp = httpx.get(layout.apiserver_url + path, verify=ssl.create_default_context(cafile=layout.ca.cert),
                     headers={"Authorization": f"Bearer {token}"}, timeout=10)
    resp.raise_for_status()
    result: dict[str, Any] = resp.json()
    return result


def node_readiness(layout: Layout, token: str) -> tuple[int, int]:
    """(nodes, Ready nodes) as the API server reports them."""
    items = api_get(layout, token, "/api/v1/nodes")["items"]
    return len(items), sum(1 for n in items if node_ready(n))


def node_ready(node: dict[str, Any]) -> bool:
    """Whether the Node's Ready condition is True."""
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", []))


def nodes_waiting(layout: Layout, token: str, want: int) -> str | None:
    """None once exactly ``want`` nodes exist and all are Ready, else what is still awaited."""
    try:
        total, ready = node_readiness(layout, token)
    except API_ERRORS as err:
        return f"API error {err}"
    return None if total == ready == want else f"{ready}/{total} of {want} nodes Ready"


def service_account_waiting(layout: Layout, token: str) -> str | None:
    """None once kube-controller-manager has made the default service account."""
    try:
        api_get(layout, token, "/api/v1/namespaces/default/serviceaccounts/default")
    except API_ERRORS:
        return "the default service account (kube-controller-manager's) does not exist yet"
    return None
