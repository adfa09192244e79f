"""The http probe against a real HTTP server (the test exporter)."""

from __future__ import annotations

import socket

from blueprints.probes import HttpProbe, Tolerance
from tasks.probes import ProbeContext, evaluate


def test_status_in_default_range_passes(exporter: str) -> None:
    """A 200 answer meets the default 2xx range."""
    res = evaluate(HttpProbe(name="h", url=f"http://{exporter}/metrics"), ProbeContext())
    assert res.ok and res.value == 200


def test_body_regex(exporter: str) -> None:
    """A regex tolerance is checked against the body."""
    ok = evaluate(HttpProbe(name="h", url=f"http://{exporter}/metrics", tolerance=Tolerance(regex="gameday_test_value")),
                  ProbeContext())
    bad = evaluate(HttpProbe(name="h", url=f"http://{exporter}/metrics", tolerance=Tolerance(regex="^nothing$")),
                   ProbeContext())
    assert ok.ok and not bad.ok


def test_refused_connection_is_a_failed_probe() -> None:
    """A service that refuses connections is measured as failing, not as unevaluable."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = evaluate(HttpProbe(name="h", url=f"http://127.0.0.1:{port}/", timeout="1s"), ProbeContext())  # type: ignore[arg-type]
    assert not res.ok and "cannot connect" in res.message
