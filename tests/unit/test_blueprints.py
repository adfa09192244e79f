"""Blueprint loading: malformed blueprints give clear errors with paths; stock YAML and the schema stay valid."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from blueprints import BlueprintError, load, parse
from blueprints.schema import SCHEMA_PATH, render
from blueprints.stock import LIBRARY, stock_names
from flows.params import StockBlueprint

ROOT = Path(__file__).resolve().parents[2]
GOOD = (LIBRARY / "smoke.yaml").read_text()


def edited(**changes: object) -> str:
    """The smoke blueprint with top-level keys replaced (None deletes a key)."""
    data = yaml.safe_load(GOOD)
    for k, v in changes.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = v
    return yaml.safe_dump(data, sort_keys=False)


def problems(text: str) -> list[str]:
    """The problems parse() reports for ``text``."""
    with pytest.raises(BlueprintError) as e:
        parse(text, "test.yaml")
    return e.value.problems


def test_unknown_fault_kind_names_its_path() -> None:
    """An unknown fault kind is reported at stages[i].faults[j] with the known kinds."""
    data = yaml.safe_load(GOOD)
    data["stages"][0]["faults"][0] = {"kind": "meteor-strike"}
    found = problems(yaml.safe_dump(data))
    assert any(p.startswith("stages[0].faults[0]") and "meteor-strike" in p and "noop" in p for p in found), (
        found
    )


def test_negative_window_names_its_path() -> None:
    """A negative observe window is reported at its path."""
    data = yaml.safe_load(GOOD)
    data["stages"][1]["observe"] = -5
    found = problems(yaml.safe_dump(data))
    assert any(p.startswith("stages[1].observe") and "negative" in p for p in found), found


def test_blast_radius_exceeded_names_its_path() -> None:
    """A pod-kill asking for more pods than max_pods is reported at its selector value."""
    data = yaml.safe_load(GOOD)
    data["stages"][1]["faults"][0]["selector"].update(mode="fixed", value=5)
    found = problems(yaml.safe_dump(data))
    assert any(p.startswith("stages[1].faults[0].selector.value") and "max_pods" in p for p in found), found


def test_setup_is_checked_like_stage_faults_and_reserves_its_stage_name() -> None:
    """A setup change outside the target's namespaces or blast radius is reported at setup[i], and no stage may
    be called 'setup' (its changes are ledgered under that name)."""
    data = yaml.safe_load(GOOD)
    data["setup"] = [{"kind": "noop"}, {"kind": "coredns-outage", "mode": "scale-to-zero", "namespace": "elsewhere"},
                     {"kind": "pod-kill", "selector": {"namespaces": ["default"], "mode": "fixed", "value": 9}}]
    found = problems(yaml.safe_dump(data))
    assert any(p.startswith("setup[1].namespace") and "elsewhere" in p for p in found), found
    assert any(p.startswith("setup[2].selector.value") and "max_pods" in p for p in found), found
    assert not any(p.startswith("setup[0]") for p in found), found
    data["stages"][0]["name"] = "setup"
    assert any(p.startswith("stages") and "reserved" in p for p in problems(yaml.safe_dump(data)))


def test_missing_target_is_reported() -> None:
    """A blueprint without a target says target is missing."""
    found = problems(edited(target=None))
    assert any(p.startswith("target") and "required" in p.lower() for p in found), found


def test_bad_promql_names_its_path() -> None:
    """An unparsable PromQL query is reported at observables[i].query."""
    data = yaml.safe_load(GOOD)
    data["observables"][0]["query"] = "sum(rate(apiserver_request_total[15s])"
    found = problems(yaml.safe_dump(data))
    assert any(p.startswith("observables[0].query") for p in found), found


def test_every_problem_is_reported_at_once() -> None:
    """Several independent mistakes are all listed, not just the first."""
    data = yaml.safe_load(GOOD)
    data["stages"][0]["faults"][0] = {"kind": "meteor-strike"}
    data["stages"][1]["recovery"] = "-3s"
    data.pop("owner")
    found = problems(yaml.safe_dump(data))
    assert len(found) >= 3, found


@pytest.mark.parametrize(
    "path",
    sorted(LIBRARY.glob("*.yaml")) + sorted((LIBRARY.parent / "replays").glob("*.yaml")),
    ids=lambda p: p.name,
)
def test_stock_blueprint_validates(path: Path) -> None:
    """Every stock blueprint loads and starts with the schema comment."""
    campaign = load(path)
    assert campaign.name
    assert path.read_text().splitlines()[0] == "# yaml-language-server: $schema=../schema.json"


def test_stock_names_match_the_parameter_literal() -> None:
    """The CampaignParams dropdown lists exactly the stock blueprints."""
    assert sorted(StockBlueprint.__args__) == stock_names()
    assert {"smoke", "coredns-outage", "control-plane-storm"} <= set(stock_names())


def test_schema_json_is_in_sync() -> None:
    """blueprints/schema.json equals what `python -m blueprints.schema` generates."""
    assert SCHEMA_PATH.read_text() == render(), "run `python -m blueprints.schema` and commit schema.json"


def test_validate_cli_exit_code_and_no_traceback(tmp_path: Path) -> None:
    """`gameday validate` on a broken blueprint exits 2, lists problems with paths, and shows no traceback."""
    bad = tmp_path / "bad.yaml"
    data = yaml.safe_load(GOOD)
    data["stages"][0]["faults"][0] = {"kind": "meteor-strike"}
    data["stages"][1]["observe"] = -1
    bad.write_text(yaml.safe_dump(data))
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "validate", str(LIBRARY / "smoke.yaml"), str(bad)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert "Traceback" not in text
    assert "stages[0].faults[0]" in text and "stages[1].observe" in text
    assert "ok " in proc.stdout


def test_validate_cli_checks_every_blueprint_in_a_folder(tmp_path: Path) -> None:
    """`gameday validate FOLDER` checks each YAML file under it, and a folder without one is a problem (exit 2)."""
    (tmp_path / "empty").mkdir()
    run = [sys.executable, "-m", "flows.cli", "validate"]
    env = {**os.environ, "COLUMNS": "400"}
    ok = subprocess.run([*run, str(ROOT / "blueprints" / "replays")], capture_output=True, text=True, cwd=ROOT,
                        timeout=60, env=env, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "openai-2024-12-11.yaml" in ok.stdout and "openai-2024-12-11-serve-stale.yaml" in ok.stdout
    empty = subprocess.run([*run, str(tmp_path / "empty")], capture_output=True, text=True, cwd=ROOT, timeout=60,
                           env=env, check=False)
    assert empty.returncode == 2 and "no blueprint" in empty.stderr, empty.stdout + empty.stderr


def test_validate_cli_unreadable_yaml(tmp_path: Path) -> None:
    """A file that is not YAML gives a line/column message and exit 2, no traceback."""
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: [unclosed\nowner: x\n")
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "validate", str(bad)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "line" in proc.stderr


def test_validate_cli_warns_and_strict_refuses(tmp_path: Path) -> None:
    """`gameday validate` prints each weak expectation with its path and exits 0; with --strict it exits 2."""
    weak = tmp_path / "weak.yaml"
    data = yaml.safe_load((LIBRARY / "coredns-outage.yaml").read_text())
    data["hypothesis"]["expectations"] = ["max(gateway_success_ratio) >= 0.95 during fault",
                                          "gateway_success_ratio <= 1 during fault"]
    weak.write_text(yaml.safe_dump(data))
    run = [sys.executable, "-m", "flows.cli", "validate"]
    env = {**os.environ, "COLUMNS": "400"}
    lenient = subprocess.run([*run, str(weak)], capture_output=True, text=True, cwd=ROOT, timeout=60, env=env,
                             check=False)
    assert lenient.returncode == 0, lenient.stdout + lenient.stderr
    assert "warning: hypothesis.expectations[0]: " in lenient.stdout and "one sample" in lenient.stdout
    assert "warning: hypothesis.expectations[1]: " in lenient.stdout and "never above 1" in lenient.stdout
    strict = subprocess.run([*run, "--strict", str(weak), str(LIBRARY / "coredns-outage.yaml")],
                            capture_output=True, text=True, cwd=ROOT, timeout=60, env=env, check=False)
    assert strict.returncode == 2 and "Traceback" not in strict.stderr
    assert "error: hypothesis.expectations[0]: " in strict.stderr
    assert f"ok {LIBRARY / 'coredns-outage.yaml'}" in strict.stdout


def test_piped_output_is_not_wrapped(tmp_path: Path) -> None:
    """Piped to a file (CI, a Prefect worker) with no COLUMNS, a warning longer than 80 columns stays on one line,
    so it can be grepped whole."""
    weak = tmp_path / "a-blueprint-file-with-a-rather-long-name-so-that-the-line-is-long.yaml"
    data = yaml.safe_load((LIBRARY / "coredns-outage.yaml").read_text())
    data["hypothesis"]["expectations"] = ["max(gateway_success_ratio) >= 0.95 during fault"]
    weak.write_text(yaml.safe_dump(data))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "validate", str(weak)], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (warning,) = [line for line in proc.stdout.splitlines() if line.strip().startswith("warning: ")]
    assert len(warning) > 120 and "one sample" in warning and warning.rstrip().endswith("...')"), proc.stdout
    assert any(line.startswith("ok ") and line.endswith(f"{weak}: coredns-outage (1 stage(s))")
               for line in proc.stdout.splitlines()), proc.stdout
