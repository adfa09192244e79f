"""Tests for the kubernetes probe's pod checks against the session lab."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from blueprints.probes import KubernetesProbe
from tasks.cluster import Cluster
from tasks.probes.k8s import measure
from tests.conftest import poll


def test_pods_ready_counts_ready_pods_where_pods_running_counts_running_ones(lab_cluster: Cluster,
                                                                            tmp_path: Path) -> None:
    """Two running pods whose program is not ready count 2 for pods-running and 0 for pods-ready, and 2 for both
    once their readiness file exists."""
    ns = f"probe-{uuid.uuid4().hex[:6]}"
    lab_cluster.core.create_namespace({"metadata": {"name": ns}})
    ready_file = tmp_path / "ready"
    try:
        for i in range(2):
            lab_cluster.core.create_namespaced_pod(ns, {
                "metadata": {"name": f"p{i}", "labels": {"app": "probe"},
                             "annotations": {"lab.gameday/program": "lab.runtime.testprograms:FileReadyProgram"}},
                "spec": {"containers": [{"name": "c", "image": "lab/program",
                                         "env": [{"name": "READY_FILE", "value": str(ready_file)}]}]}})

        def count(check: str) -> Any:
            probe = KubernetesProbe.model_validate({"name": check, "type": "kubernetes", "check": check,
                                                    "namespace": ns, "label_selector": {"app": "probe"},
                                                    "tolerance": {"range": [2, 2]}})
            return measure(probe, lab_cluster)

        poll(lambda: count("pods-running") == 2, 60, "both pods Running")
        assert count("pods-ready") == 0
        ready_file.write_text("")
        poll(lambda: count("pods-ready") == 2, 60, "both pods Ready")
        assert count("pods-running") == 2
    finally:
        lab_cluster.core.delete_namespace(ns)
