"""Virtual GPU nodes: one real node-agent process per GPU node, with its own kernel-log file and fake NVML.

``start_gpu_agents`` gives each node ``<state>/gpu/<node>/`` holding ``kmsg`` (the node's kernel log),
``nvml.json`` (the fake NVML state the agent mirrors), the agent's lease state, token, ready file and log;
starts ``python -m agents --nvml fake --gpu-count 8 --authorize any --audience gameday-agent`` on a loopback port
(as the stock DaemonSet, the agents accept only tokens issued for the audience ``gameday-agent``; callers pass when
they are the runner's service account ``gameday/gameday-runner`` or a SubjectAccessReview allows them:
``lab/control/addons/gpu/agents.yaml`` grants that account the agentfaults verbs through RBAC as well); and
annotates the Node with
``gameday.dev/agent-endpoint`` and ``gameday.dev/gpu-pci-<i>`` (the fake GPUs' PCI addresses).
With ``netns``, a node's agent applies nccl-partition rules inside a training rank's namespace.
``stop_gpu_agents`` stops the processes (SIGTERM: the agent reverts what it holds) and removes the
annotations it added. The agent is reached only as a process: nothing here imports ``agents``.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from lab.gpu.errors import AgentStartError

REPO_ROOT = Path(__file__).resolve().parents[2]
ENDPOINT_ANNOTATION = "gameday.dev/agent-endpoint"
PCI_ANNOTATION = "gameday.dev/gpu-pci-"
GPU_COUNT = 8
START_TIMEOUT_S = 30.0
TRAINING_SUBNET = "198.51.100.0/24"
AGENT_AUDIENCE = "gameday-agent"
"""The audience of the tokens the lab's node agents accept (``--audience``), as the stock DaemonSet's do."""
RUNNER_ACCOUNT = "system:serviceaccount:gameday:gameday-runner"
"""The runner's service account: what its audience-bound agent tokens are issued for."""


@dataclass
class GpuNodeHandle:
    """One GPU node's agent process and files."""

    node: str
    directory: Path
    kmsg_path: Path
    nvml_state_path: Path
    endpoint: str
    pci_addresses: list[str]
    proc: subprocess.Popen[bytes]
    api_url: str
    api_token: str
    annotations: list[str] = field(default_factory=list)
    ca_file: Path | None = None


def _patch_node(api_url: str, token: str, node: str, annotations: dict[str, str | None],
                ca_file: Path | None = None) -> None:
    body = json.dumps({"metadata": {"annotations": annotations}}).encode()
    try:
        resp = httpx.patch(
            f"{api_url.rstrip('/')}/api/v1/nodes/{node}", content=body, timeout=10,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/merge-patch+json"},
            verify=ssl.create_default_context(cafile=ca_file),
        )  # fmt: skip
    except httpx.HTTPError as exc:
        raise AgentStartError(f"cannot annotate node {node}: {exc}") from exc
    if not resp.is_success:
        raise AgentStartError(f"cannot annotate node {node}: HTTP {resp.status_code} {resp.content[:300]!r}")


def _wait_ready(ready: Path, nvml: Path, proc: subprocess.Popen[bytes], log: Path) -> tuple[str, list[str]]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AgentStartError(
                f"agent exited with {proc.returncode}: {log.read_text(errors='replace')[-1500:]}"
            )
        if ready.exists() and nvml.exists():
            devices = json.loads(nvml.read_text())["devices"]
            pci = [str(d["pci_bus_id"]).lower()[-12:] for d in devices]
            return ready.read_text().strip(), pci
        time.sleep(0.05)
    raise AgentStartError(f"agent did not become ready in {START_TIMEOUT_S:g}s; log: {log}")


def _start_one(
    state_dir: Path, api_url: str, token: str, node: str, netns: str | None,
    ca_file: Path | None = None,
) -> GpuNodeHandle:
    d = state_dir / "gpu" / node
    d.mkdir(parents=True, exist_ok=True)
    kmsg, nvml, ready, token_file = d / "kmsg", d / "nvml.json", d / "agent-ready", d / "agent-token"
    kmsg.touch()
    ready.unlink(missing_ok=True)
    nvml.unlink(missing_ok=True)
    token_file.write_text(token)
    token_file.chmod(0o600)
    argv = [
        sys.executable, "-m", "agents", "--listen", "127.0.0.1:0", "--node", node,
        "--api-url", api_url, "--api-token-file", str(token_file), "--allow-user", RUNNER_ACCOUNT,
        "--authorize", "any", "--audience", AGENT_AUDIENCE,
        "--kmsg-path", str(kmsg), "--kmsg-nsenter", "no", "--state-file", str(d / "agent-state.json"),
        "--nvml", "fake", "--gpu-count", str(GPU_COUNT), "--nvml-state-file", str(nvml),
        "--ready-file", str(ready),
    ]  # fmt: skip
    if netns:
        argv += ["--netns", netns, "--allow-cidr", TRAINING_SUBNET]
    if ca_file is not None:
        argv += ["--api-ca-file", str(ca_file)]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
    log = d / "agent.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=REPO_ROOT,
            start_new_session=True,
        )  # fmt: skip
    try:
        endpoint, pci = _wait_ready(ready, nvml, proc, log)
        annotations: dict[str, str | None] = {ENDPOINT_ANNOTATION: endpoint}
        annotations |= {f"{PCI_ANNOTATION}{i}": addr for i, addr in enumerate(pci)}
        _patch_node(api_url, token, node, annotations, ca_file)
    except BaseException:
        _terminate(proc)
        raise
    return GpuNodeHandle(
        node, d, kmsg, nvml, endpoint, pci, proc, api_url, token, list(annotations), ca_file
    )


def start_gpu_agents(
    state_dir: Path,
    api_url: str,
    agent_api_token: str,
    node_names: list[str],
    netns: Mapping[str, str] | None = None,
    ca_file: Path | None = None,
) -> list[GpuNodeHandle]:
    """Start one agent per GPU node and annotate the nodes; on failure stop the ones already started.

    ``netns`` maps a node to the network namespace its partitions go into (e.g. the training rank it
    hosts, ``gdtrain-<id>-<rank>``); such agents accept peers in 198.51.100.0/24. ``ca_file`` is the CA of an
    HTTPS API server (the real control plane's).
    """
    handles: list[GpuNodeHandle] = []
    try:
        for node in node_names:
            ns = (netns or {}).get(node)
            handles.append(_start_one(state_dir, api_url, agent_api_token, node, ns, ca_file))
    except BaseException:
        stop_gpu_agents(handles)
        raise
    return handles


def _terminate(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def stop_gpu_agents(handles: list[GpuNodeHandle], unannotate: bool = True) -> None:
    """Stop every agent (it reverts what it holds) and remove the annotations added at start."""
    for h in handles:
        _terminate(h.proc)
        if unannotate:
            try:
                _patch_node(h.api_url, h.api_token, h.node, dict.fromkeys(h.annotations), h.ca_file)
            except AgentStartError:
                pass  # the API server may already be gone; the annotations die with it
