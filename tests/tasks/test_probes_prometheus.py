"""The prometheus probe against a real Prometheus scraping a real exporter."""

from __future__ import annotations

import http.server
import json
import socket
import threading

import pytest

from blueprints.probes import PrometheusProbe, Tolerance
from tasks.errors import ProbeError
from tasks.probes import ProbeContext, evaluate


def test_every_sample_within_range_passes(prometheus: str) -> None:
    """Both series (42 and 7) are within [0, 100]: the probe passes with both values."""
    res = evaluate(PrometheusProbe(name="p", query="gameday_test_value", tolerance=Tolerance(range=(0, 100))),
                   ProbeContext(prometheus_url=prometheus))
    assert res.ok and sorted(res.value) == [7.0, 42.0]


def test_one_sample_outside_fails_and_is_named(prometheus: str) -> None:
    """With value 42, the series {pod="b"}=7 is outside: the probe fails and names it."""
    res = evaluate(PrometheusProbe(name="p", query="gameday_test_value", tolerance=Tolerance(value=42)),
                   ProbeContext(prometheus_url=prometheus))
    assert not res.ok and 'pod="b"' in res.message


def test_scalar_aggregation(prometheus: str) -> None:
    """An aggregated query returns one sample; its value meets an exact tolerance."""
    res = evaluate(PrometheusProbe(name="p", query="sum(gameday_test_value)", tolerance=Tolerance(value=49)),
                   ProbeContext(prometheus_url=prometheus))
    assert res.ok and res.value == 49.0


@pytest.mark.parametrize(("empty_is", "ok"), [("fail", False), ("pass", True)])
def test_empty_result_follows_empty_is(prometheus: str, empty_is: str, ok: bool) -> None:
    """A query with no samples passes or fails as empty_is says."""
    probe = PrometheusProbe(name="p", query="no_such_metric", tolerance=Tolerance(value=1), empty_is=empty_is)  # type: ignore[arg-type]
    assert evaluate(probe, ProbeContext(prometheus_url=prometheus)).ok is ok


def test_prometheus_down_cannot_be_evaluated() -> None:
    """A Prometheus that does not answer raises ProbeError (guardrails fail closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    probe = PrometheusProbe(name="p", query="up", tolerance=Tolerance(value=1), timeout="1s")  # type: ignore[arg-type]
    with pytest.raises(ProbeError):
        evaluate(probe, ProbeContext(prometheus_url=f"http://127.0.0.1:{port}"))


def test_bad_promql_cannot_be_evaluated(prometheus: str) -> None:
    """A query Prometheus rejects raises ProbeError."""
    with pytest.raises(ProbeError):
        evaluate(PrometheusProbe(name="p", query="sum(", tolerance=Tolerance(value=1)),
                 ProbeContext(prometheus_url=prometheus))


def test_no_prometheus_url_cannot_be_evaluated() -> None:
    """Without a Prometheus URL the probe raises ProbeError."""
    with pytest.raises(ProbeError):
        evaluate(PrometheusProbe(name="p", query="up", tolerance=Tolerance(value=1)), ProbeContext())


@pytest.mark.parametrize(("statuses", "ok"), [([503], True), ([503, 502], False)])
def test_a_bad_gateway_is_asked_again_once(statuses: list[int], ok: bool) -> None:
    """A 502/503/504 is asked again once, at once: answered then, the probe evaluates; else ProbeError."""
    answers = [*statuses, 200]
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            status = answers[len(asked) - 1]
            body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {}, "value": [0, "1"]}]}}).encode() if status == 200 else b"bad gateway"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            probe = PrometheusProbe(name="p", query="up", tolerance=Tolerance(value=1))
            ctx = ProbeContext(prometheus_url=f"http://127.0.0.1:{server.server_port}")
            if ok:
                assert evaluate(probe, ctx).ok
            else:
                with pytest.raises(ProbeError, match="HTTP 502"):
                    evaluate(probe, ctx)
        finally:
            server.shutdown()
            thread.join(timeout=5)
    assert len(asked) == 2 and all(p.startswith("/api/v1/query?query=up") for p in asked)
