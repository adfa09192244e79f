"""Helpers for tests/e2e/test_gpu_blueprints.py: one GPU lab, `gameday run` on it, and readers for what a run left.

:func:`scaled_overrides` turns a stock blueprint's windows into ``--set`` overrides divided by a factor, so the stock
campaign runs with shorter windows (the lab compresses its own durations through its settings, not a time scale).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import yaml

from blueprints.common import parse_duration

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "blueprints" / "library"
WITHIN = re.compile(r"within (\S+) after rollback")


def _seconds(value: Any) -> float:
    parsed = parse_duration(str(value))
    assert parsed is not None, f"not a duration: {value!r}"
    return float(parsed.total_seconds())


def scaled_overrides(blueprint: Path, scale: float) -> list[str]:
    """``--set`` values dividing every window of ``blueprint`` (baseline, observe, recovery, final_recovery and
    each expectation's ``within``) by ``scale``."""
    data = yaml.safe_load(blueprint.read_text())
    out = [f"{key}={_seconds(data[key]) / scale:g}s" for key in ("baseline", "final_recovery") if key in data]
    for i, stage in enumerate(data["stages"]):
        out += [f"stages[{i}].{key}={_seconds(stage[key]) / scale:g}s" for key in ("observe", "recovery")]
    for i, line in enumerate(data["hypothesis"]["expectations"]):
        m = WITHIN.search(line) if isinstance(line, str) else None
        if m:
            scaled = f"within {_seconds(m.group(1)) / scale:g}s after rollback"
            out.append(f"hypothesis.expectations[{i}]={line.replace(m.group(0), scaled)}")
    return out


@dataclass
class GpuLab:
    """A running lab with two GPU nodes (training job when ``training``), its gameday state dir and environment."""

    handle: Any
    state: Path
    env: dict[str, str]
    training: bool
    stack: ExitStack = field(default_factory=ExitStack)

    def stop(self) -> None:
        """`lab down` (idempotent)."""
        self.stack.close()


@dataclass
class Run:
    """One finished `gameday run`: its folder, record, results, frames, output and wall time."""

    run_dir: Path
    record: dict[str, Any]
    results: dict[str, Any]
    frames: Any  # a pandas DataFrame (observable, series, timestamp, value); pandas ships no stubs here
    output: str
    returncode: int
    seconds: float

    def window(self, kind: str, stage: str) -> tuple[datetime, datetime]:
        """The (start, end) of a stage's ``fault`` or ``recovery`` window."""
        for w in self.record["windows"]:
            if w["kind"] == kind and w["stage"] == stage:
                return pd.Timestamp(w["start"]).to_pydatetime(), pd.Timestamp(w["end"]).to_pydatetime()
        raise AssertionError(f"no {kind} window for stage {stage}: {self.record['windows']}")

    def values(self, observable: str, start: datetime, end: datetime) -> list[float]:
        """Samples of ``observable`` between ``start`` and ``end``, in time order."""
        f = self.frames
        rows = f[(f["observable"] == observable) & (f["timestamp"] >= start) & (f["timestamp"] <= end)]
        return [float(v) for v in rows.sort_values("timestamp")["value"]]

    def stage_values(self, observable: str, stage: str, kinds: tuple[str, ...] = ("fault",)) -> list[float]:
        """Samples of ``observable`` over the given windows of ``stage``."""
        out: list[float] = []
        for kind in kinds:
            out += self.values(observable, *self.window(kind, stage))
        return out

    def fault(self, stage: str) -> dict[str, Any]:
        """The (only) fault outcome of ``stage``."""
        found = [s for s in self.record["stages"] if s["name"] == stage]
        assert found, f"stage {stage} not in the record"
        faults: list[dict[str, Any]] = found[0]["faults"]
        assert len(faults) == 1, faults
        return faults[0]

    def verdicts(self) -> dict[str, str]:
        """Each expectation's text → its verdict."""
        return {e["result"]["text"]: e["result"]["verdict"] for e in self.results["expectations"]}


def gameday_run(lab: GpuLab, blueprint: Path, overrides: list[str], timeout: float = 420) -> Run:
    """`gameday run BLUEPRINT --target lab --yes --set ...` as a subprocess; the newest run folder, read."""
    args = [sys.executable, "-m", "flows.cli", "run", str(blueprint), "--target", "lab", "--yes"]
    for o in overrides:
        args += ["--set", o]
    started = time.monotonic()
    proc = subprocess.run(
        args, cwd=ROOT, env=lab.env, capture_output=True, text=True, timeout=timeout, check=False
    )
    seconds = time.monotonic() - started
    output = proc.stdout + proc.stderr
    name = yaml.safe_load(blueprint.read_text())["name"]
    runs = sorted((lab.state / "runs").glob(f"{name}-2*"))
    assert runs, f"no run folder for {name}; gameday said:\n{output[-4000:]}"
    run_dir = runs[-1]
    record = json.loads((run_dir / "record.json").read_text())
    results_file = run_dir / "report" / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    frames = pd.read_parquet(run_dir / "frames.parquet")
    print(f"\n{name}: gameday run took {seconds:.1f}s (exit {proc.returncode})")
    return Run(run_dir, record, results, frames, output, proc.returncode, seconds)


def http_text(url: str, token: str | None = None) -> str:
    """GET ``url`` (bearer ``token`` when given) and return the body."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(url, headers=headers, timeout=10).raise_for_status().text


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample of metric ``name`` in a Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
            out.append((labels, float(m.group(2))))
    return out


def agent_faults(lab: GpuLab) -> dict[str, list[str]]:
    """Fault ids each GPU node agent still holds (GET /v1/faults, as the runner)."""
    out: dict[str, list[str]] = {}
    for node, url in sorted(lab.handle.endpoints.get("gpu_agents", {}).items()):
        body = json.loads(http_text(f"{url.rstrip('/')}/v1/faults", lab.handle.agent_token))
        out[node] = sorted(str(f["fault_id"]) for f in body.get("faults", []) if f.get("state") == "active")
    return out


def prometheus_at(lab: GpuLab, query: str, at: datetime) -> list[tuple[dict[str, str], float]]:
    """An instant query at ``at``: (labels, value) per series."""
    from urllib.parse import urlencode

    url = f"{lab.handle.endpoints['prometheus']}/api/v1/query?" + urlencode(
        {"query": query, "time": at.timestamp()}
    )
    body = json.loads(http_text(url))
    return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]


def netns_rules(namespace: str) -> str:
    """iptables and nft rules inside a network namespace (root)."""
    out = []
    for cmd in (["iptables", "-S"], ["nft", "list", "ruleset"]):
        proc = subprocess.run(["ip", "netns", "exec", namespace, *cmd], capture_output=True, text=True, timeout=20,
                              check=False)  # fmt: skip
        out.append(proc.stdout)
    return "\n".join(out)


def netns_list() -> list[str]:
    """Names of the network namespaces on this machine."""
    proc = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=20, check=False)
    return [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]


def lab_env(state: Path, prefect_api_url: str) -> dict[str, str]:
    """The environment `gameday` runs with: this state dir (lab under it), the given Prefect server, wide console."""
    env = {**os.environ, "GAMEDAY_STATE_DIR": str(state), "GAMEDAY_LAB_STATE_DIR": str(state / "lab"),
           "PREFECT_API_URL": prefect_api_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "COLUMNS": "200"}  # fmt: skip
    env.pop("GAMEDAY_PROMETHEUS_URL", None)
    return env
