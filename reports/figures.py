"""Plotly figures as plain JSON-able dicts (no plotly.graph_objects: building 70+ figures must stay fast).

Arrays are float32 typed-array specs (``{"dtype": "f4", "bdata": base64}``, which plotly.js 3 decodes), a
regular series uses ``x0``/``dx`` instead of an x array, and long series are downsampled for display with
MinMaxLTTB (statistics never see the display copy). Every time axis is seconds since the run's first
injection, so several runs of one campaign line up.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from tsdownsample import MinMaxLTTBDownsampler

from blueprints.campaign import Observable
from reports.frames import Run, ns

Fig = dict[str, Any]
WINDOW_COLORS = {"baseline": "#9e9e9e", "fault": "#e53935", "recovery": "#43a047", "cooldown": "#1e88e5",
                 "final-recovery": "#8bc34a"}
EVENT_COLORS = {"inject": "#c62828", "verified": "#2e7d32", "verify-failed": "#ef6c00", "guardrail-breach": "#6a1b9a",
                "abort": "#000000", "rollback": "#1565c0", "rollback-failed": "#b71c1c", "approval": "#00838f",
                "error": "#b71c1c"}
LINE_EVENTS = ("inject", "guardrail-breach", "abort", "rollback", "rollback-failed", "approval")
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
DASHES = ("solid", "dash", "dot", "dashdot")
STAGE_COLORS = {"fault": ("#e53935", "#8e24aa", "#f4511e", "#6d4c41", "#d81b60"),
                "recovery": ("#43a047", "#00897b", "#7cb342", "#1e88e5", "#00acc1")}
DEFAULT_MAX_POINTS = 1500
ECDF_POINTS = 200


def f32(a: npt.ArrayLike) -> dict[str, str]:
    """A float32 typed-array spec for plotly.js."""
    return {"dtype": "f4", "bdata": base64.b64encode(np.asarray(a, dtype="<f4").tobytes()).decode("ascii")}


def display_xy(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], max_points: int) -> dict[str, Any]:
    """Trace x/y for display: x0/dx when regular and short enough, else MinMaxLTTB-downsampled arrays."""
    if x.size > 2:
        steps = np.diff(x)
        if x.size <= max_points and np.allclose(steps, steps[0], rtol=1e-6, atol=1e-6):
            return {"x0": float(x[0]), "dx": float(steps[0]), "y": f32(y)}
    if x.size > max_points:
        idx = MinMaxLTTBDownsampler().downsample(x, y, n_out=max_points)  # type: ignore[no-untyped-call]
        x, y = x[idx], y[idx]
    return {"x": f32(x), "y": f32(y)}


def _layout(title: str, height: int, **extra: Any) -> dict[str, Any]:
    base = {"title": {"text": title, "font": {"size": 14}, "x": 0.01, "xanchor": "left"}, "height": height,
            "margin": {"l": 60, "r": 20, "t": 40, "b": 30}, "legend": {"orientation": "h", "y": -0.12, "yanchor": "top"},
            "hovermode": "closest"}
    base.update(extra)
    return base


def shading(run: Run) -> list[dict[str, Any]]:
    """Layout shapes: every window shaded, and lines at injections, breaches, aborts, rollbacks, approvals."""
    anchor = run.anchor()
    shapes: list[dict[str, Any]] = []
    for w in run.record.windows:
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "y0": 0, "y1": 1, "layer": "below",
                       "x0": (ns(w.start) - anchor) / 1e9, "x1": (ns(w.end) - anchor) / 1e9, "line": {"width": 0},
                       "fillcolor": WINDOW_COLORS[w.kind], "opacity": 0.12})
    for e in run.events():
        if e.kind in LINE_EVENTS:
            x = (ns(e.at) - anchor) / 1e9
            shapes.append({"type": "line", "xref": "x", "yref": "paper", "y0": 0, "y1": 1, "x0": x, "x1": x,
                           "line": {"color": EVENT_COLORS[e.kind], "width": 1, "dash": "dot"}})
    return shapes


def timeline_figure(run: Run) -> Fig:
    """Every window as a bar and every event as a marker, one row per stage, on the shared time axis."""
    anchor = run.anchor()

    def rel(at: datetime) -> float:
        """Seconds since the anchor."""
        return (ns(at) - anchor) / 1e9

    data: list[dict[str, Any]] = []
    for kind, color in WINDOW_COLORS.items():
        ws = [w for w in run.record.windows if w.kind == kind]
        if ws:
            data.append({"type": "bar", "orientation": "h", "name": kind, "marker": {"color": color, "opacity": 0.6},
                         "y": [w.stage or kind for w in ws], "base": [rel(w.start) for w in ws],
                         "x": [rel(w.end) - rel(w.start) for w in ws],
                         "hovertext": [f"{kind} {w.stage or ''}: {w.start:%H:%M:%S} → {w.end:%H:%M:%S}" for w in ws],
                         "hoverinfo": "text"})
    events = run.events()
    for kind in sorted({e.kind for e in events}):
        evs = [e for e in events if e.kind == kind]
        data.append({"type": "scatter", "mode": "markers", "name": kind, "x": [rel(e.at) for e in evs],
                     "y": [e.stage or "campaign" for e in evs], "hoverinfo": "text",
                     "marker": {"size": 11, "color": EVENT_COLORS.get(kind, "#546e7a"), "symbol": "diamond",
                                "line": {"width": 1, "color": "#fff"}},
                     "hovertext": [f"{kind} {e.at:%H:%M:%S.%f}"[:-3] + f" {e.fault or ''} {e.message}" for e in evs]})
    rows = len({w.stage or w.kind for w in run.record.windows} | {e.stage or "campaign" for e in events})
    return {"data": data, "layout": _layout("Timeline (s since first injection)", 160 + 36 * rows, barmode="overlay",
                                            xaxis={"ticksuffix": " s", "zeroline": True},
                                            yaxis={"type": "category", "automargin": True})}


def observable_figure(obs: Observable, runs: list[Run], max_points: int = DEFAULT_MAX_POINTS) -> Fig:
    """The observable over the whole run (windows shaded), every series of every run, aligned on injection."""
    data: list[dict[str, Any]] = []
    for ri, run in enumerate(runs):
        anchor = run.anchor()
        for si, s in enumerate(run.series.get(obs.name, [])):
            x = (s.t - anchor).astype(np.float64) / 1e9
            name = (s.name or obs.name) + ("" if ri == 0 else f" · {run.record.run_id}")
            data.append({"type": "scattergl" if s.t.size > 20000 else "scatter", "mode": "lines", "name": name,
                         "legendgroup": run.record.run_id, "line": {"width": 1.2 if ri == 0 else 1,
                         "color": PALETTE[(si + 3 * ri) % len(PALETTE)], "dash": DASHES[ri % len(DASHES)]},
                         **display_xy(x, s.v, max_points)})
    shapes = shading(runs[0])
    if obs.slo is not None:
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": obs.slo[1],
                       "y1": obs.slo[1], "line": {"color": "#b71c1c", "width": 1, "dash": "dash"}})
    title = obs.name + (f" [{obs.unit}]" if obs.unit else "") + (f" — SLO {obs.slo[0]} {obs.slo[1]:g}" if obs.slo else "")
    return {"data": data, "layout": _layout(title, 340, shapes=shapes, showlegend=len(data) > 1,
                                            xaxis={"ticksuffix": " s"},
                                            yaxis={"title": {"text": obs.unit}, "automargin": True})}


def _quantiles(v: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    probs = np.linspace(0, 1, min(ECDF_POINTS, max(2, v.size)))
    return np.quantile(v, probs), probs


def _window_color(run: Run, kind: str, stage: str | None) -> str:
    if kind not in STAGE_COLORS:
        return WINDOW_COLORS[kind]
    names = [s.name for s in run.record.stages]
    i = names.index(stage) if stage in names else 0
    return STAGE_COLORS[kind][i % len(STAGE_COLORS[kind])]


def ecdf_figure(obs: Observable, runs: list[Run]) -> Fig:
    """Empirical CDFs (all samples, as quantiles): the baseline and each stage's fault and recovery windows; for
    compared runs, their baseline and all fault and all recovery windows pooled (dashed)."""
    data: list[dict[str, Any]] = []
    for ri, run in enumerate(runs):
        groups: list[tuple[str, str, list[tuple[int, int]]]] = []
        for w in run.record.windows:
            if w.kind in ("baseline", "fault", "recovery") and (ri == 0 or w.kind == "baseline"):
                groups.append((f"{w.kind} {w.stage or ''}".strip(), _window_color(run, w.kind, w.stage),
                               [(ns(w.start), ns(w.end))]))
        if ri > 0:
            groups += [(kind, WINDOW_COLORS[kind], [(ns(w.start), ns(w.end)) for w in run.windows(kind)])
                       for kind in ("fault", "recovery")]
        for name, color, spans in groups:
            parts = [run.pooled(obs.name, a, b)[1] for a, b in spans]
            v = np.concatenate(parts) if parts else np.empty(0)
            if v.size == 0:
                continue
            q, p = _quantiles(v)
            data.append({"type": "scatter", "mode": "lines", "x": f32(q), "y": f32(p), "legendgroup": run.record.run_id,
                         "name": name + ("" if ri == 0 else f" · {run.record.run_id}"),
                         "line": {"shape": "hv", "width": 1.5, "color": color, "dash": DASHES[ri % len(DASHES)]}})
    legend = {"orientation": "v", "x": 0.99, "xanchor": "right", "y": 0.02, "yanchor": "bottom", "font": {"size": 10},
              "bgcolor": "rgba(255,255,255,0.75)"}
    return {"data": data, "layout": _layout(f"{obs.name}: distribution (ECDF)", 340, legend=legend,
                                            xaxis={"title": {"text": obs.unit or "value"}},
                                            yaxis={"title": {"text": "fraction ≤ x"}, "range": [0, 1.02]})}
