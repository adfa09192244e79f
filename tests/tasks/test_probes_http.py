"""The http probe against a real HTTP server (the test exporter)."""

from __future__ import annotations

import http.server
import socket
import threading

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


def test_redirects_are_followed(exporter: str) -> None:
    """A redirect is followed: the tolerance is checked against the page it leads to."""

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(301)
            self.send_header("Location", f"http://{exporter}/metrics")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            res = evaluate(HttpProbe(name="h", url=f"http://127.0.0.1:{server.server_port}/old",
                                     tolerance=Tolerance(regex="gameday_test_value")), ProbeContext())
        finally:
            server.shutdown()
            thread.join(timeout=5)
    assert res.ok and res.value == 200
