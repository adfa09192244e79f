"""Anomaly guardrails: a band learnt from the baseline window becomes the guardrail's tolerance for the stages.

After the baseline window, :func:`learn_bands` range-queries each banded guardrail's PromQL over that window (one
sample per ``every``, at least a second apart), pools the values of all its series, and narrows the probe's range
tolerance to mean ± max(k·σ, floor) on the sides the band names (the outer range still bounds it). A guardrail whose
query had fewer than ``min_samples`` finite values in the baseline, or that Prometheus could not answer for, keeps
its probe's tolerance, and the note says so.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from blueprints.probes import Guardrail, Tolerance
from tasks.errors import ProbeError
from tasks.probes.metrics import fetch_frames


class LearntBand(BaseModel):
    """What the baseline said about one banded guardrail."""

    model_config = ConfigDict(extra="forbid")

    guardrail: str
    samples: int
    mean: float | None = None
    std: float | None = None
    range: tuple[float, float] | None = None
    note: str


def band_range(values: list[float], guardrail: Guardrail) -> tuple[float, float, float, float]:
    """(low, high, mean, σ) of a banded guardrail's tolerance given its baseline values (at least two)."""
    band, outer = guardrail.band, guardrail.probe.tolerance.range
    assert band is not None and outer is not None
    mean = math.fsum(values) / len(values)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
    half = max(band.k * std, band.floor)
    low = max(outer[0], mean - half) if band.side in ("both", "lower") else outer[0]
    high = min(outer[1], mean + half) if band.side in ("both", "upper") else outer[1]
    return low, max(low, high), mean, std


def learn_bands(guardrails: list[Guardrail], prometheus_url: str | None, start: datetime | None,
                end: datetime | None) -> tuple[list[Guardrail], list[LearntBand]]:
    """The guardrails with every band learnt from [start, end] (None: there was no baseline window) as a range
    tolerance, and what was learnt."""
    out: list[Guardrail] = []
    learnt: list[LearntBand] = []
    for g in guardrails:
        if g.band is None:
            out.append(g)
            continue
        query: Any = getattr(g.probe, "query", "")
        values: list[float] = []
        problem = ""
        if start is None or end is None or end <= start:
            problem = "the campaign has no baseline window"
        elif not prometheus_url:
            problem = "no Prometheus to read the baseline from"
        else:
            try:
                frame = fetch_frames(prometheus_url, {g.name: query}, start, end,
                                     step=max(g.every.total_seconds(), 1.0))
                values = [float(v) for v in frame["value"] if math.isfinite(float(v))]
            except ProbeError as e:
                problem = f"the baseline could not be read: {e}"
        if not problem and len(values) < g.band.min_samples:
            problem = f"{len(values)} baseline sample(s), fewer than min_samples {g.band.min_samples}"
        if problem:
            out.append(g)
            learnt.append(LearntBand(guardrail=g.name, samples=len(values),
                                     note=f"no band: {problem}; the probe's tolerance alone applies"))
            continue
        low, high, mean, std = band_range(values, g)
        probe = g.probe.model_copy(update={"tolerance": Tolerance(range=(low, high))})
        out.append(g.model_copy(update={"probe": probe}))
        learnt.append(LearntBand(guardrail=g.name, samples=len(values), mean=mean, std=std, range=(low, high),
                                 note=f"band [{low:.6g}, {high:.6g}] from {len(values)} baseline samples "
                                      f"(mean {mean:.6g}, σ {std:.6g}, k {g.band.k:g}, floor {g.band.floor:g})"))
    return out, learnt
