"""Tests of the running_apiserver fixture itself: start-up, identities, clean shutdown, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from kubernetes import client

from lab.apiserver.testing import poll_until, running_apiserver


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_fixture_yields_working_identities_and_stops(tmp_path: Path) -> None:
    """The fixture's tokens work (runner and node identities), and the process is gone after the block."""
    with running_apiserver(tmp_path, nodes=["n1"]) as api:
        assert api.url.startswith("http://127.0.0.1:") and api.https_url.startswith("https://")
        review = client.AuthenticationV1Api(api.client()).create_token_review(
            client.V1TokenReview(spec=client.V1TokenReviewSpec(token=api.token_for("system:node:n1")))
        )
        assert review.status.user.groups == ["system:nodes", "system:authenticated"]
        assert client.CoreV1Api(api.client(api.runner_token)).list_namespace().items
        pid = api.pid
    assert not _alive(pid)


def test_server_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    """A test process killed with SIGKILL leaves no API server behind (--parent-pid)."""
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from lab.apiserver.testing import running_apiserver
        with running_apiserver(Path({str(tmp_path)!r})) as api:
            print(api.pid, flush=True)
            time.sleep(60)
    """)
    root = Path(__file__).resolve().parents[3]
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=root)
    try:
        assert child.stdout is not None
        pid = int(child.stdout.readline())
        assert _alive(pid)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        poll_until(lambda: not _alive(pid), timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
