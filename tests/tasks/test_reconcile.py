"""reconcile after a runner was SIGKILLed mid-stage: everything it injected is restored from the ledger."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tasks.cluster import Cluster
from tasks.faults.storm_process import find_storms, stop_storm
from tasks.ledger import configmap_name
from tasks.reconcile import reconcile
from tests.conftest import poll
from tests.tasks.helpers import NODES, api_cluster

COREFILE = ".:53 {\n    errors\n    kubernetes cluster.local\n    cache 30\n    reload\n}\n"
ROOT = Path(__file__).resolve().parents[2]


def _arrange(admin: Cluster) -> None:
    admin.ensure_namespace("kube-system")
    admin.call("create deployment", admin.apps.create_namespaced_deployment, "kube-system", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "coredns", "namespace": "kube-system"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                 "template": {"metadata": {"labels": {"k8s-app": "kube-dns"}},
                              "spec": {"containers": [{"name": "coredns", "image": "lab/coredns"}]}}}})
    admin.create_configmap("kube-system", {"metadata": {"name": "coredns"}, "data": {"Corefile": COREFILE}})


def _state(c: Cluster) -> dict[str, Any]:
    return {
        "replicas": c.read_deployment("kube-system", "coredns").spec.replicas,
        "corefile": c.read_configmap("kube-system", "coredns").data["Corefile"],
        "cordoned": sorted(n.metadata.name for n in c.list_nodes() if n.spec.unschedulable),
        "flowschemas": sorted(c.flowschema_names()), "levels": sorted(c.priority_level_names()),
    }


def test_reconcile_restores_everything_a_killed_runner_left(api: Any, tmp_path: Path) -> None:
    """A SIGKILLed runner leaves three faults applied and its storm stops by itself; reconcile settles all four
    entries, newest first, and is idempotent."""
    admin = Cluster.from_kubeconfig(api.kubeconfig, "lab-admin")
    _arrange(admin)
    before = _state(admin)
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests/tasks/victim.py"), str(api.kubeconfig),
                             str(tmp_path), str(api.state_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.strip() == "INJECTED", proc.stderr.read().decode() if proc.stderr else line
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        during = _state(admin)
        assert during["replicas"] == 0 and during["cordoned"] == [NODES[0]] and during["corefile"] != COREFILE
        assert "gameday-breakglass-victim" in during["flowschemas"]
        # the storm stops on its own once its runner is gone; reconcile then finds its entry open and settles it
        poll(lambda: not find_storms("victim/storm"), 10, "the storm to stop with its killed runner")

        runner = api_cluster(api, as_lab=True)
        results = reconcile(runner, tmp_path, log=lambda m: None)
        assert [r.fault_id for r in results] == ["storm", "cordon", "corefile", "scale"]
        assert all(r.outcome == "rolled-back" and r.previous_state == "applied" for r in results), results
        assert all(r.sources == ["local", "cluster"] for r in results)
        assert _state(admin) == before
        assert _state(admin)["corefile"] == COREFILE
        assert find_storms("victim/storm") == []
        assert configmap_name("victim") not in [c.metadata.name for c in admin.list_configmaps("gameday")]
        assert reconcile(runner, tmp_path, log=lambda m: None) == []
        runner.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        stop_storm("victim/storm")
        admin.close()
