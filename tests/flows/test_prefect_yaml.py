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
    from flows.loading import stock_names

    manual = {
        d["parameters"]["params"]["blueprint"]
        for d in deployments()
        if not d.get("schedules") and d["entrypoint"].startswith("flows/campaign.py")
    }
    assert manual == set(stock_names())
