"""kwok's part of the lab: its configuration (options and Stages) and the fake Node objects it manages.

kwok (``sigs.k8s.io/kwok``) plays the kubelet of every node annotated ``kwok.x-k8s.io/node: fake``: it
initialises the Node's status, renews its Lease in ``kube-node-lease`` through the API server and turns the
pods bound to it Running, all as the ``kwok-controller`` identity (group ``system:nodes``, so the API
server's default APF configuration puts its traffic where a kubelet's goes). No container runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lab.wellknown import KWOK_NODE_ANNOTATION

STAGES_FILE = Path(__file__).resolve().parent / "kwok-stages.yaml"
NODE_ROLE_LABEL = "gameday.dev/node-kind"
NODE_IP_ANNOTATION = "gameday.dev/node-ip"
"""The InternalIP kwok's node-initialize Stage gives a node (in 10.240.0.0/16, one per node)."""


def node_names(count: int) -> list[str]:
    """The names of a lab's kwok nodes."""
    return [f"kwok-node-{i}" for i in range(count)]


def node_ip(index: int) -> str:
    """The InternalIP of the index-th kwok node (10.240.0.1 ... 10.240.0.250, 10.240.1.1, ...)."""
    return f"10.240.{index // 250}.{index % 250 + 1}"


def node(name: str, ip: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A Node object that kwok takes on (its status is kwok's to write)."""
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", NODE_IP_ANNOTATION: ip, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "type": "kwok", NODE_ROLE_LABEL: "kwok", **(labels or {})},
        },
        "spec": {},
    }


def config_documents(parallelism: int = 16) -> list[dict[str, Any]]:
    """kwok's ``--config``: a KwokConfiguration followed by the lab's Stages."""
    options = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1", "kind": "KwokConfiguration",
        "options": {"nodeLeaseParallelism": parallelism, "nodePlayStageParallelism": parallelism,
                    "podPlayStageParallelism": parallelism, "enableDebuggingHandlers": False,
                    "enableProfilingHandler": False},
    }
    return [options, *yaml.safe_load_all(STAGES_FILE.read_text())]


def write_config(path: Path, parallelism: int = 16) -> Path:
    """Write kwok's configuration file."""
    path.write_text(yaml.safe_dump_all(config_documents(parallelism), sort_keys=False))
    return path
