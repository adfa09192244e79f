"""prefect.yaml: every deployment points at a real flow and its parameters validate against the flow's models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def deployments() -> list[dict[str, Any]]:
    """The deployments declared in prefect.yaml (YAML anchors resolved)."""
    return list(yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"])


@pytest.mark.parametrize("dep", deployments(), ids=lambda d: d["name"])
def test_deployment_entrypoint_and_parameters(dep: dict[str, Any]) -> None:
    """The entrypoint loads as a flow and the deployment's parameters pass its validation."""
    from prefect.flows import load_flow_from_entrypoint

    flow = load_flow_from_entrypoint(str(ROOT / dep["entrypoint"]))
    validated = flow.validate_parameters(dep.get("parameters") or {})
    assert set(validated) <= {"params"}
    assert dep["work_pool"]["name"] == "gameday-process"


def test_weekly_schedule_is_paused_and_reconcile_is_hourly() -> None:
    """The weekly game day is paused by default with a timezone; reconcile runs every hour."""
    by_name = {d["name"]: d for d in deployments()}
    weekly = by_name["weekly-game-day"]["schedules"][0]
    assert weekly["active"] is False and weekly["timezone"] and len(weekly["cron"].split()) == 5
    hourly = by_name["reconcile-hourly"]["schedules"][0]
    assert hourly["cron"].split()[1:] == ["*", "*", "*", "*"]


def test_every_stock_blueprint_has_a_manual_deployment() -> None:
    """Each stock blueprint can be started by hand from a deployment of its own."""
    from blueprints.stock import stock_names

    manual = {
        d["parameters"]["params"]["blueprint"]
        for d in deployments()
        if not d.get("schedules") and d["entrypoint"].startswith("flows/campaign.py") and "replay" not in d["tags"]
    }
    assert manual == set(stock_names())


def test_incident_replay_deployment_points_at_the_replay_blueprint() -> None:
    """The incident-replay deployment runs the 2024-12-11 replay blueprint, which exists and validates."""
    from blueprints import load

    (replay,) = [d for d in deployments() if "replay" in d["tags"]]
    path = ROOT / replay["parameters"]["params"]["blueprint"]
    assert load(path).name == "openai-2024-12-11"


def test_campaign_deployments_have_no_queueing_limit() -> None:
    """Campaign deployments carry no deployment concurrency limit: the per-target lock refuses, it does not queue."""
    for d in deployments():
        if d["entrypoint"].startswith("flows/campaign.py"):
            assert "concurrency_limit" not in d, d["name"]


def test_kubernetes_work_pool_example_is_declared() -> None:
    """A Kubernetes work pool for an in-cluster runner is defined beside the process pool."""
    pools = yaml.safe_load((ROOT / "prefect.yaml").read_text())["definitions"]["work_pools"]
    k8s = pools["gameday_k8s"]
    assert k8s["name"] == "gameday-kubernetes" and k8s["job_variables"]["service_account_name"]
