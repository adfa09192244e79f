"""Chaos Toolkit conversion (flows/ctk.py): experiment → blueprint → experiment, and clear refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from blueprints import parse
from blueprints.stock import LIBRARY
from flows.ctk import ConversionError, export_campaign, import_experiment

ROOT = Path(__file__).resolve().parents[2]


def experiment() -> dict[str, Any]:
    """A small experiment: one http steady-state probe, two actions (one followed by a probe), two rollbacks."""
    act = {"type": "python", "module": "chaosk8s.deployment.actions", "func": "scale_deployment"}
    return {
        "title": "Scale down, then up!",
        "description": "two actions",
        "configuration": {"ns": "inference"},
        "secrets": {"k8s": {"KUBERNETES_CONTEXT": "lab"}},
        "steady-state-hypothesis": {
            "title": "the app answers",
            "probes": [{"type": "probe", "name": "app-up", "tolerance": 200,
                        "provider": {"type": "http", "url": "http://127.0.0.1:9/"}}],
        },
        "method": [
            {"type": "action", "name": "scale-a", "provider": {**act, "arguments": {"name": "a", "replicas": 0}}},
            {"type": "probe", "name": "check-a", "provider": {"type": "http", "url": "http://127.0.0.1:9/a"}},
            {"type": "action", "name": "scale-b", "provider": {**act, "arguments": {"name": "b", "replicas": 0}}},
        ],
        "rollbacks": [
            {"type": "action", "name": "restore-a", "provider": {**act, "arguments": {"name": "a", "replicas": 1}}},
            "restore-b-ref",
        ] + [],
    }


OBSERVED = {"observables": {"ok_ratio": "sum(rate(http_ok_total[15s])) / sum(rate(http_total[15s]))"},
            "expectations": ["mean(ok_ratio) >= 0.99 during fault"]}
"""What a user adds with --observable/--expect for an experiment whose probes are not metrics."""


def test_import_maps_title_probes_actions_and_rollbacks() -> None:
    """title → name, probes → steady_state, actions → one stage of chaostoolkit faults with rollbacks attached."""
    exp = experiment()
    exp["rollbacks"] = exp["rollbacks"][:1]
    campaign = parse(import_experiment(exp, namespaces=["inference"], **OBSERVED))  # type: ignore[arg-type]
    assert campaign.name == "scale-down-then-up"
    assert [p.name for p in campaign.steady_state] == ["app-up"]
    (stage,) = campaign.stages
    assert [f.kind for f in stage.faults] == ["chaostoolkit", "chaostoolkit"]
    first, second = stage.faults
    assert first.rollback is not None and first.rollback["name"] == "restore-a"  # type: ignore[union-attr]
    assert first.verify is not None and first.verify["name"] == "check-a"  # type: ignore[union-attr]
    assert second.rollback is None  # type: ignore[union-attr]
    assert first.secrets == {"k8s": {"KUBERNETES_CONTEXT": "lab"}}  # type: ignore[union-attr]


def test_import_refuses_unknown_reference() -> None:
    """A rollback naming an activity that does not exist is a clear error."""
    with pytest.raises(ConversionError, match="restore-b-ref"):
        import_experiment(experiment())


def test_export_round_trips_a_single_stage_campaign() -> None:
    """Exporting an imported experiment gives back its method, rollbacks and steady-state probes."""
    exp = experiment()
    exp["rollbacks"] = exp["rollbacks"][:1]
    back = export_campaign(parse(import_experiment(exp, **OBSERVED)))  # type: ignore[arg-type]
    assert [a["name"] for a in back["method"]] == ["scale-a", "check-a", "scale-b"]
    assert [a["name"] for a in back["rollbacks"]] == ["restore-a"]
    assert back["steady-state-hypothesis"]["probes"][0]["name"] == "app-up"


def test_import_without_observable_probes_is_refused() -> None:
    """An experiment whose steady state is only an http probe gets no placeholder hypothesis: the import is refused,
    naming the probe and how to say what would refute it."""
    exp = experiment()
    exp["rollbacks"] = exp["rollbacks"][:1]
    with pytest.raises(ConversionError, match=r"'app-up' \(http\).*--observable NAME=PROMQL --expect"):
        import_experiment(exp)


def test_prometheus_probes_become_expectations() -> None:
    """A chaosprometheus query probe becomes an observable, and its range tolerance two every-sample expectations."""
    exp = experiment()
    exp["rollbacks"] = exp["rollbacks"][:1]
    exp["steady-state-hypothesis"]["probes"].append({
        "type": "probe", "name": "error-rate", "tolerance": {"type": "range", "range": [0, 0.01]},
        "provider": {"type": "python", "module": "chaosprometheus.probes", "func": "query",
                     "arguments": {"query": "sum(rate(http_errors_total[1m])) / sum(rate(http_total[1m]))"}}})
    campaign = parse(import_experiment(exp))
    assert [o.name for o in campaign.observables] == ["error_rate"]
    assert [e.describe() for e in campaign.hypothesis.expectations] == [
        "error_rate >= 0 during fault", "error_rate <= 0.01 during fault"]
    assert [p.name for p in campaign.steady_state] == ["app-up", "error-rate"]


def test_export_refuses_multi_stage_campaigns() -> None:
    """A campaign of several stages cannot be one experiment; the error names the stages."""
    with pytest.raises(ConversionError, match="single-stage"):
        export_campaign(parse((LIBRARY / "smoke.yaml").read_text()))


def test_export_cli_error_is_clean(tmp_path: Path) -> None:
    """`gameday export-ctk` on a multi-stage blueprint exits 2 with a message and no traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "export-ctk", str(LIBRARY / "smoke.yaml"), "-o", str(tmp_path / "x.json")],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert "single-stage" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.json").exists()


def test_import_cli_writes_a_valid_blueprint(tmp_path: Path) -> None:
    """`gameday import-ctk` refuses an experiment it cannot observe, and with --observable/--expect writes a
    blueprint that `gameday validate --strict` accepts."""
    exp = experiment()
    exp["rollbacks"] = exp["rollbacks"][:1]
    src = tmp_path / "exp.json"
    src.write_text(json.dumps(exp))
    out = tmp_path / "bp.yaml"
    run = [sys.executable, "-m", "flows.cli"]
    refused = subprocess.run([*run, "import-ctk", str(src), "-o", str(out)], capture_output=True, text=True,
                             cwd=ROOT, timeout=60, check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr and not out.exists(), refused.stderr
    flags = ["--observable", "ok_ratio=" + OBSERVED["observables"]["ok_ratio"],  # type: ignore[index]
             "--expect", "mean(ok_ratio) >= 0.99 during fault"]
    proc = subprocess.run([*run, "import-ctk", str(src), "-o", str(out), *flags], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith("# yaml-language-server: $schema=")
    check = subprocess.run([*run, "validate", "--strict", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=60,
                           check=False)
    assert check.returncode == 0, check.stderr
