"""Benchmark: report build time and size for 24 observables × 1 h at 1 s × 3 runs (goal: < 3 s, < 15 MB).

Uses the SYNTHETIC run generator (tests/reports/make_fixture.py). Prints measured values beside the goals and
beside a full-resolution build (no display downsampling) as ratios; asserts nothing.
Run: ``.venv/bin/python bench/bench_report.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reports import build
from reports.figures import ecdf_figure, observable_figure, timeline_figure
from reports.frames import load_run
from reports.html import render
from reports.results import analyse

GOAL_S, GOAL_MB = 3.0, 15.0


def _generator() -> object:
    spec = importlib.util.spec_from_file_location("make_fixture", ROOT / "tests/reports/make_fixture.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_runs(root: Path) -> list[Path]:
    """Three one-hour runs of the same 24-observable campaign."""
    gen = _generator()
    return [gen.make_run(root / f"run{i}", "confirmed", baseline_s=1200, observe_s=600, recovery_s=600,  # type: ignore[attr-defined]
                         extra=20, seed=i, run_id=f"bench-{i}", start=gen.T0 + timedelta(hours=2 * i))  # type: ignore[attr-defined]
            for i in range(3)]


def _timed(fn: object, *args: object, **kw: object) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args, **kw)  # type: ignore[operator]
    return time.perf_counter() - t, out


def main() -> None:
    """Generate the runs, build the report, print times and sizes beside the goals."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t_gen, runs = _timed(make_runs, root)
        assert isinstance(runs, list)
        rows = sum(len(s.v) for ss in load_run(runs[0]).series.values() for s in ss)
        print(f"generated 3 runs × 24 observables × 1 h at 1 s ({rows} samples per run) in {t_gen:.1f} s")
        times = []
        for i in range(args.repeat):
            dt, paths = _timed(build, runs[0], root / f"out{i}", compare=runs[1:])
            times.append(dt)
        best = min(times)
        size_mb = paths.html.stat().st_size / 1e6  # type: ignore[attr-defined]
        dt_full, full = _timed(build, runs[0], root / "full", compare=runs[1:], max_points=10**9)
        full_mb = full.html.stat().st_size / 1e6  # type: ignore[attr-defined]
        print(f"{'':28}{'measured':>12}{'goal':>10}{'ratio':>8}")
        label = f"build time (best of {args.repeat})"
        print(f"{label:28}{best:>10.2f} s{GOAL_S:>8.1f} s{best / GOAL_S:>8.2f}")
        print(f"{'report.html size':28}{size_mb:>9.2f} MB{GOAL_MB:>7.1f} MB{size_mb / GOAL_MB:>8.2f}")
        print(f"full resolution (no downsampling): {dt_full:.2f} s, {full_mb:.2f} MB "
              f"→ downsampled/full: time {best / dt_full:.2f}, size {size_mb / full_mb:.2f}")
        loaded = [load_run(r) for r in runs]
        obs = loaded[0].campaign.observables if loaded[0].campaign else []
        res = [analyse(r) for r in loaded]
        figs = [(observable_figure(o, loaded), ecdf_figure(o, loaded)) for o in obs]
        phases = {
            "load 3 runs": lambda: [load_run(r) for r in runs],
            "statistics+verdicts": lambda: [analyse(r) for r in loaded],
            "figures": lambda: [timeline_figure(loaded[0])] + [(observable_figure(o, loaded), ecdf_figure(o, loaded))
                                                               for o in obs],
            "HTML render": lambda: render(loaded[0], res[0], timeline_figure(loaded[0]), figs, res[1:]),
        }
        parts = {k: min(_timed(f)[0] for _ in range(args.repeat)) for k, f in phases.items()}
        print("breakdown (best of each): " + " · ".join(f"{k} {v:.2f} s ({v / best:.0%})" for k, v in parts.items()))

if __name__ == "__main__":
    main()
