"""The storm's verdict through the `gameday` CLI on the emulated plane: control-plane-storm is shed by APF and
confirmed. On the real control plane the real APF's rejections vary too much on this 2-core machine (27 to 627 a
second measured) to fix the verdict: tests/e2e/test_real_plane.py asserts the shedding there instead."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import E2E
from tests.e2e.test_verdicts import _run


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_storm_is_shed_and_its_ballast_removed(e2e: E2E) -> None:
    """control-plane-storm's expensive LISTs (1,000 ballast ConfigMaps) are shed by APF with 429s while nodes stay
    Ready and the runner is served: confirmed, not low-information (the 429s are the measured effect; nodes and
    5xx, which should not move, are reported as unaffected), and the ballast is gone after the run."""
    from kubernetes import client

    text, results = _run(e2e, "control-plane-storm", "control-plane-storm")
    assert results["overall"]["verdict"] == "confirmed", (results["overall"], [
        (e["result"]["text"], e["result"]["reason"]) for e in results["expectations"]])
    assert "verdict: ✅ confirmed: " in text
    assert "api_429_rate" not in results["no_effect"] and not results["low_information"], results["no_effect"]
    shed = next(o for o in results["observables"] if o["observable"] == "api_429_rate")
    fault = next(w for w in shed["windows"] if w["window"] == "fault")
    baseline = next(w for w in shed["windows"] if w["window"] == "baseline")
    assert fault["summary"]["mean"] >= 100 and baseline["summary"]["p99"] == 0, (baseline, fault)
    left = client.CoreV1Api(e2e.lab.client()).list_config_map_for_all_namespaces(
        label_selector="gameday.dev/ballast").items
    assert left == []
