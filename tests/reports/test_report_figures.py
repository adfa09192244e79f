"""reports.figures: display downsampling, compact encoding, shading, and figures that carry data."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from reports.figures import display_xy, ecdf_figure, f32, observable_figure, shading, timeline_figure
from reports.frames import load_run


def _decode(spec: dict[str, str]) -> np.ndarray:
    assert spec["dtype"] == "f4"
    return np.frombuffer(base64.b64decode(spec["bdata"]), dtype="<f4")


def test_regular_short_series_use_x0_dx() -> None:
    """A regular series under the point budget is sent as x0/dx and float32 y, no x array."""
    x = np.arange(100, dtype=np.float64)
    out = display_xy(x, np.sin(x), 1500)
    assert out["x0"] == 0 and out["dx"] == 1 and "x" not in out
    assert np.allclose(_decode(out["y"]), np.sin(x), atol=1e-6)


def test_long_series_are_downsampled_keeping_extremes() -> None:
    """A long series is cut to the budget with MinMaxLTTB, keeping its global min and max."""
    x = np.arange(100_000, dtype=np.float64)
    y = np.sin(x / 1000) + (x == 55_555) * 10
    out = display_xy(x, y, 1000)
    ys = _decode(out["y"])
    assert ys.size <= 1000 and _decode(out["x"]).size == ys.size
    assert ys.max() == np.float32(y.max()) and ys.min() == np.float32(y.min())


def test_f32_round_trips() -> None:
    """The typed-array spec decodes back to the float32 values."""
    assert _decode(f32([1.5, -2.25])).tolist() == [1.5, -2.25]


def test_every_figure_has_data(any_run: Path) -> None:
    """The timeline and each observable's series and ECDF figures carry at least one trace with points."""
    run = load_run(any_run)
    assert run.campaign is not None
    assert timeline_figure(run)["data"]
    shapes = shading(run)
    assert len(shapes) >= len(run.record.windows)
    for o in run.campaign.observables:
        if not run.series.get(o.name):
            continue
        fig = observable_figure(o, [run])
        assert fig["data"] and all(t.get("y") for t in fig["data"])
        assert fig["layout"]["shapes"][: len(run.record.windows)] == shapes[: len(run.record.windows)]
        assert ecdf_figure(o, [run])["data"]


def test_compared_runs_are_aligned_on_injection(synthetic: dict[str, Path]) -> None:
    """Each run is placed on seconds since its own first injection, one legend group per run."""
    a, b = load_run(synthetic["confirmed"]), load_run(synthetic["refuted"])
    a_anchor, b_anchor = a.anchor(), b.anchor()
    obs = next(o for o in a.campaign.observables if o.name == "gpu_util") if a.campaign else None
    assert obs is not None
    fig = observable_figure(obs, [a, b], max_points=10_000)
    xs = [t["x0"] for t in fig["data"]]
    assert xs == [(a.series["gpu_util"][0].t[0] - a_anchor) / 1e9, (b.series["gpu_util"][0].t[0] - b_anchor) / 1e9]
    assert len({t["legendgroup"] for t in fig["data"]}) == 2
