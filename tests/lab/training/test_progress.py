"""Tests for lab.training.progress: folding progress records into job statistics and metrics."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from lab.training.progress import Progress, ProgressReader


def _steps(p: Progress, first: int, last: int) -> None:
    for s in range(first, last + 1):
        p.apply({"event": "step", "step": s, "t": float(s)})


def test_redone_steps_count_as_lost_after_a_restart() -> None:
    """Steps 11-13 done again after resuming from the step-10 checkpoint are three lost steps."""
    p = Progress()
    p.apply({"event": "start", "step": 0, "t": 0.0})
    _steps(p, 1, 13)
    p.apply({"event": "checkpoint", "step": 10, "t": 10.0})
    p.apply({"event": "start", "step": 10, "t": 20.0})
    _steps(p, 11, 15)
    assert (p.lost_steps, p.restarts, p.max_step, p.steps_total) == (3, 1, 15, 18)
    assert p.resume_steps == [0, 10] and p.last_checkpoint_step == 10
    assert p.last_restart_lost == 3


def test_failure_records_give_the_hang_before_the_error() -> None:
    """An error 10 s after the last step is a 10 s hang (a DROP); a second rank's error does not overwrite it."""
    p = Progress()
    _steps(p, 1, 5)
    p.apply({"event": "error", "step": 6, "rank": 0, "t": 15.0, "error": "Timed out waiting 10000ms"})
    p.apply({"event": "error", "step": 6, "rank": 1, "t": 15.5, "error": "Connection closed by peer"})
    assert p.last_hang_s == 10.0 and len(p.errors) == 2


def test_reader_reads_appended_records_and_exports_metrics(tmp_path: Path) -> None:
    """The reader picks up records appended later (partial lines wait) and exports training_* metrics."""
    path = tmp_path / "progress.jsonl"
    registry = CollectorRegistry()
    reader = ProgressReader(path, registry)
    assert reader.poll().steps_total == 0
    lines = [{"event": "start", "step": 0, "t": 1.0}] + [
        {"event": "step", "step": s, "t": 1.0 + s} for s in (1, 2)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"event": "step", "st')
    assert reader.poll().steps_total == 2
    with path.open("a") as f:
        f.write('ep": 3, "t": 4.0}\n')
    assert reader.poll().max_step == 3
    text = generate_latest(registry).decode()
    assert "training_steps_total 3.0" in text
    assert "training_step 3.0" in text


def test_stock_blueprint_uses_only_metrics_the_job_exports(tmp_path: Path) -> None:
    """Every training_* name in blueprints/library/nccl-rail-partition.yaml is exported by the progress reader."""
    import re

    text = (
        Path(__file__).resolve().parents[3] / "blueprints" / "library" / "nccl-rail-partition.yaml"
    ).read_text()
    used = set(re.findall(r"training_\w+", text))
    registry = CollectorRegistry()
    ProgressReader(tmp_path / "progress.jsonl", registry)
    served = set(re.findall(r"^# TYPE (\w+)", generate_latest(registry).decode(), re.MULTILINE))
    served |= {f"{n}_total" for n in served}
    assert used and used <= served, used - served
