"""Tests for the kubernetes probe's pod and workload checks against the session lab."""

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


def test_daemonset_available_counts_the_available_pods_of_a_daemonset(lab_cluster: Cluster) -> None:
    """daemonset-available measures node-local-dns's available pods (one per real node, 3 in the session lab), and a
    DaemonSet that does not exist is an error, not a zero."""
    import pytest

    from tasks.errors import NotFound

    def probe(name: str) -> KubernetesProbe:
        return KubernetesProbe.model_validate({"name": "ds", "type": "kubernetes", "check": "daemonset-available",
                                               "namespace": "kube-system", "object": name,
                                               "tolerance": {"range": [1, 100]}})

    assert measure(probe("node-local-dns"), lab_cluster) == 3
    with pytest.raises(NotFound):
        measure(probe("no-such-daemonset"), lab_cluster)


def test_daemonset_available_needs_namespace_and_object() -> None:
    """A daemonset-available check without its object is refused at validation, naming the check."""
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="'daemonset-available' needs namespace and object"):
        KubernetesProbe.model_validate({"name": "ds", "type": "kubernetes", "check": "daemonset-available",
                                        "namespace": "kube-system", "tolerance": {"range": [1, 1]}})
