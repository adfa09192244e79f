"""Which of the real nodes' pods Prometheus scrapes: a file-discovery targets file the kubelets keep.

A running pod annotated ``prometheus.io/scrape: "true"`` is a target at ``<pod IP>:<prometheus.io/port>`` (path
``prometheus.io/path``, default ``/metrics``), labelled ``namespace``, ``pod``, ``node`` and ``app`` (its
``k8s-app`` or ``app`` label): the annotations Prometheus's Kubernetes discovery is usually configured to honour.
The file is rewritten atomically whenever the set changes; Prometheus's ``file_sd_configs`` picks it up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.runtime.files import write_atomic

SCRAPE_TARGETS = "scrape-targets.json"
Obj = dict[str, Any]


@dataclass(frozen=True)
class ScrapeTarget:
    """One pod's metrics endpoint and its labels."""

    address: str
    path: str
    labels: tuple[tuple[str, str], ...]


def scrape_target(pod: Obj, pod_ip: str) -> ScrapeTarget | None:
    """The pod's target, if its annotations ask to be scraped (None otherwise, or with no usable port)."""
    meta = pod.get("metadata") or {}
    notes = meta.get("annotations") or {}
    port = str(notes.get("prometheus.io/port", ""))
    if str(notes.get("prometheus.io/scrape", "")).lower() != "true" or not port.isdigit():
        return None
    labels = meta.get("labels") or {}
    app = labels.get("k8s-app") or labels.get("app") or meta.get("name", "")
    return ScrapeTarget(f"{pod_ip}:{port}", str(notes.get("prometheus.io/path", "/metrics")), (
        ("namespace", str(meta.get("namespace", ""))), ("pod", str(meta.get("name", ""))),
        ("node", str((pod.get("spec") or {}).get("nodeName", ""))), ("app", str(app))))


def write_targets(path: Path, targets: list[ScrapeTarget]) -> None:
    """Write the file-discovery file (one target group per pod), atomically."""
    groups = [{"targets": [t.address], "labels": {**dict(t.labels), "__metrics_path__": t.path}}
              for t in sorted(targets, key=lambda t: t.address)]
    write_atomic(path, json.dumps(groups, indent=1))
