"""Anomaly guardrails (tasks/bands.py) with the plain runner, a real exporter and Debian's Prometheus scraping it
every second: the band learnt from the baseline window catches a value its absolute tolerance would let through,
and a baseline with too few samples leaves the absolute tolerance alone, with a note."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from blueprints import parse
from tasks.faults.base import FaultContext, Injection
from tasks.probes import ProbeContext
from tasks.run.connect import plain_ops, probe_evaluator
from tasks.run.recorder import Recorder
from tasks.run.runner import CampaignRunner
from tests.conftest import poll, require
from tests.flows.conftest import FileFault, ListLedger

BLUEPRINT = """
name: band-test
owner: tests
hypothesis: {{belief: latency stays as it was, expectations: ["latency <= 1000 during fault"]}}
target: {{cluster: lab, namespaces: [default], blast_radius: {{max_pods: 1}}}}
observables: [{{name: latency, query: gameday_band_latency}}]
guardrails:
  - name: latency-normal
    every: 0.5s
    band: {{{method}floor: 1, side: upper, min_samples: {min_samples}}}
    probe: {{name: latency, type: prometheus, query: gameday_band_latency, tolerance: {{range: [0, 1000]}}}}
baseline: {baseline}
stages:
  - name: slow
    faults: [{{kind: noop, name: slowdown}}]
    observe: 6s
    recovery: 0s
"""


@dataclass
class Metric:
    """A gauge served by a real exporter and scraped by a real Prometheus every second."""

    gauge: Gauge
    prometheus: str
    level: float = 10.0


@pytest.fixture(scope="module")
def metric(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Metric]:
    """gameday_band_latency at about 10 (± 0.5 noise, reset every 0.1 s), scraped each second."""
    binary = shutil.which("prometheus")
    require(binary is not None, "needs Prometheus: apt-get install -y prometheus")
    assert binary is not None
    registry = CollectorRegistry()
    gauge = Gauge("gameday_band_latency", "a latency that a fault can raise", registry=registry)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    tmp = tmp_path_factory.mktemp("band-prom")
    (tmp / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs: [{{job_name: band, static_configs: [{{targets: ['127.0.0.1:{server.server_port}']}}]}}]\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=(tmp / "prometheus.log").open("wb"))
    url = f"http://127.0.0.1:{port}"
    state = Metric(gauge, url)
    stop = threading.Event()
    noise = random.Random(5)

    def jitter() -> None:
        while not stop.wait(0.1):
            gauge.set(state.level + noise.uniform(-0.5, 0.5))

    jitterer = threading.Thread(target=jitter, daemon=True)
    jitterer.start()

    def scraped() -> bool:
        try:
            r = httpx.get(f"{url}/api/v1/query", params={"query": "gameday_band_latency"}, timeout=1)
            return r.is_success and len(r.json()["data"]["result"]) == 1
        except (httpx.HTTPError, ValueError):
            return False

    try:
        poll(scraped, 30, "Prometheus to scrape the exporter")
        yield state
    finally:
        stop.set()
        jitterer.join(timeout=5)
        proc.terminate()
        proc.wait(timeout=10)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class Slowdown(FileFault):
    """FileFault that also raises the latency to 30 while injected (well inside the absolute 0..1000)."""

    def __init__(self, root: Path, metric: Metric) -> None:
        super().__init__(root)
        self.metric = metric

    def inject(self, inj: Injection, ctx: FaultContext) -> Injection:
        """Raise the latency."""
        self.metric.level = 30.0
        return super().inject(inj, ctx)

    def rollback(self, inj: Injection, ctx: FaultContext) -> None:
        """Bring it back."""
        self.metric.level = 10.0
        super().rollback(inj, ctx)


SIGMA, ARMA = "k: 4, ", "method: arma, order: [1, 0], "


def _settled(metric: Metric) -> bool:
    """Whether Prometheus's latest sample is back at the metric's level (a previous test's fault may linger)."""
    r = httpx.get(f"{metric.prometheus}/api/v1/query", params={"query": "gameday_band_latency"}, timeout=1)
    return abs(float(r.json()["data"]["result"][0]["value"][1]) - metric.level) <= 1


def _runner(tmp_path: Path, metric: Metric, baseline: str, min_samples: int, method: str = SIGMA) -> CampaignRunner:
    poll(lambda: _settled(metric), 30, "the latency back at its level in Prometheus")
    campaign = parse(BLUEPRINT.format(baseline=baseline, min_samples=min_samples, method=method))
    ops = plain_ops({"noop": Slowdown(tmp_path, metric)}, ListLedger(),
                    probe_evaluator(ProbeContext(prometheus_url=metric.prometheus)))
    ctx = FaultContext(cluster=None, run_id="band", prometheus_url=metric.prometheus)
    return CampaignRunner(campaign, ctx, ops, Recorder("band"))


def _notes(runner: CampaignRunner) -> list[Any]:
    return [e for e in runner.recorder.events if e.kind == "note" and e.data.get("band")]


@pytest.mark.parametrize(("method", "baseline", "min_samples"), [(SIGMA, "8s", 5), (ARMA, "12s", 9)],
                         ids=["sigma", "arma"])
def test_a_value_outside_the_baseline_band_aborts_the_stage(tmp_path: Path, metric: Metric, method: str,
                                                            baseline: str, min_samples: int) -> None:
    """After a baseline at about 10, the band (mean ± k·σ, or an AR(1) forecast interval) is a few units wide, not
    the absolute 0..1000; the fault's 30 leaves it, the guardrail breaches and the stage is aborted and rolled back."""
    runner = _runner(tmp_path, metric, baseline, min_samples, method)
    assert runner.run() == "aborted"
    (note,) = _notes(runner)
    band = note.data["band"]
    assert band["method"] == ("arma" if method == ARMA else "sigma"), band
    assert band["samples"] >= 5 and 9 <= band["mean"] <= 11, band
    assert 0 < band["range"][1] - 10 < 20 and band["range"][0] == 0, band
    breaches = [e for e in runner.recorder.events if e.kind == "guardrail-breach"]
    assert breaches and breaches[0].data["guardrail"] == "latency-normal", runner.recorder.events
    assert list(tmp_path.glob("*.injected")) == [] and metric.level == 10.0


def test_too_short_a_baseline_leaves_the_absolute_tolerance(tmp_path: Path, metric: Metric) -> None:
    """A 2 s baseline has fewer samples than min_samples 20: the band is not learnt (a note says so), the absolute
    0..1000 applies and the fault's 30 passes, the run completes."""
    runner = _runner(tmp_path, metric, "2s", 20)
    assert runner.run() == "completed"
    (note,) = _notes(runner)
    assert note.data["band"]["range"] is None and "fewer than min_samples 20" in note.message, note.message
    assert not [e for e in runner.recorder.events if e.kind == "guardrail-breach"]


def test_a_band_needs_a_metric_with_an_outer_range() -> None:
    """A band on an HTTP probe is refused at its path before anything runs."""
    from blueprints.errors import BlueprintError

    text = BLUEPRINT.format(baseline="1s", min_samples=5, method=SIGMA).replace(
        "probe: {name: latency, type: prometheus, query: gameday_band_latency, tolerance: {range: [0, 1000]}}",
        "probe: {name: latency, type: http, url: 'http://127.0.0.1:1/'}")
    with pytest.raises(BlueprintError, match=r"guardrails\[0\].*band: an anomaly band needs a prometheus probe"):
        parse(text)


def test_an_arma_band_is_refused_too_few_samples_or_too_high_an_order() -> None:
    """``method: arma`` defaults min_samples to 3 per parameter (12 for ARMA(1, 1)); a smaller one, or an order
    above 4, is refused at its path before anything runs."""
    from blueprints.errors import BlueprintError

    campaign = parse(BLUEPRINT.format(baseline="1s", min_samples=12, method=ARMA).replace("min_samples: 12", ""
                     ).replace("order: [1, 0], ", ""))
    band = campaign.guardrails[0].band
    assert band is not None and band.method == "arma" and band.order == (1, 1) and band.min_samples == 12
    with pytest.raises(BlueprintError, match=r"guardrails\[0\]\.band.*needs at least 9 baseline samples"):
        parse(BLUEPRINT.format(baseline="1s", min_samples=5, method=ARMA))
    with pytest.raises(BlueprintError, match=r"guardrails\[0\]\.band\.order.*0 to 4"):
        parse(BLUEPRINT.format(baseline="1s", min_samples=30, method="method: arma, order: [5, 0], "))
