"""The storm on the real control plane: `gameday run` (its own ephemeral Prefect, as a user without a server runs it)
against `lab up --real-nodes 2`, the storm's LISTs sent as the telemetry service account and met
by the real APF, and confirmed. (The DNS demo and its fix run on the real plane in tests/e2e/test_verdicts.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from lab.testing import LabHandle, running_control_plane
from tests.conftest import poll, require

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def real_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabHandle, Path]]:
    """A real control plane with one kwok node and two real nodes, and a gameday state dir beside it."""
    require(os.geteuid() == 0, "the real nodes' pod network needs root (ip link/addr)")
    state = tmp_path_factory.mktemp("gameday-real")
    with running_control_plane(state / "lab", nodes=1, real_nodes=2) as handle:
        yield handle, state


def _run(real_lab: tuple[LabHandle, Path], blueprint: str, campaign: str) -> tuple[str, dict[str, Any]]:
    """`gameday run BLUEPRINT --target lab --yes` once CoreDNS is whole: its output and results.json."""
    handle, state = real_lab
    apps = client.AppsV1Api(handle.client())

    def dns_whole() -> bool:
        d = apps.read_namespaced_deployment("coredns", "kube-system")
        return bool(d.status.ready_replicas) and d.status.ready_replicas == d.spec.replicas

    poll(dns_whole, 120, "CoreDNS ready before the run")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GAMEDAY_", "PREFECT_"))}
    env.update(GAMEDAY_STATE_DIR=str(state), PREFECT_SERVER_ANALYTICS_ENABLED="false", COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "run", blueprint, "--target", "lab", "--yes"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text, text[-4000:]
    runs = sorted((state / "runs").glob(f"{campaign}-*"))
    assert runs, text[-4000:]
    record = json.loads((runs[-1] / "record.json").read_text())
    assert all(f["rollback_ok"] for s in record["stages"] for f in s["faults"]), record["stages"]
    assert all(f["rollback_ok"] for f in record["setup"]), record["setup"]
    return text, json.loads((runs[-1] / "report" / "results.json").read_text())


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_storm_is_shed_by_the_real_apf_and_confirmed(real_lab: tuple[LabHandle, Path]) -> None:
    """control-plane-storm's LISTs, sent as the telemetry service account with a token from the real TokenRequest
    API, are mostly rejected by the real kube-apiserver's APF while every node stays Ready and the runner is served
    through break-glass: confirmed, not low-information, the shed share measured (none of the storm's flow in the
    baseline, 429s only in the storm), and the ballast and break-glass objects are gone after the run."""
    handle, state = real_lab
    text, results = _run(real_lab, "control-plane-storm", "control-plane-storm")
    assert results["overall"]["verdict"] == "confirmed", (results["overall"], [
        (e["result"]["text"], e["result"]["reason"]) for e in results["expectations"]])
    assert "verdict: ✅ confirmed: " in text
    assert "storm_shed_share" not in results["no_effect"] and not results["low_information"], results["no_effect"]

    def window(observable: str, name: str) -> dict[str, Any]:
        found = next(o for o in results["observables"] if o["observable"] == observable)
        return dict(next(w for w in found["windows"] if w["window"] == name)["summary"])

    assert window("storm_shed_share", "fault")["mean"] >= 0.25, window("storm_shed_share", "fault")
    assert window("api_429_rate", "baseline")["p99"] == 0 and window("api_429_rate", "fault")["mean"] > 1
    run = max((state / "runs").glob("control-plane-storm-*"))
    (fault_record,) = json.loads((run / "record.json").read_text())["stages"][0]["faults"]
    identity = fault_record["evidence"]["identity"]
    assert identity == "system:serviceaccount:telemetry:telemetry", fault_record["evidence"]
    core = client.CoreV1Api(handle.client())
    assert core.list_config_map_for_all_namespaces(label_selector="gameday.dev/ballast").items == []
    schemas = client.FlowcontrolApiserverV1Api(handle.client()).list_flow_schema().items
    assert not [s.metadata.name for s in schemas if s.metadata.name.startswith("gameday-breakglass")]
