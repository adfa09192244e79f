"""Test helpers for the runtime's tests: ``wait_for``, a deadline-bounded poll that raises ``WaitTimeout``.

The lab with the runtime's real nodes is ``lab.testing.running_control_plane(..., real_nodes=2)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lab.errors import LabError


class WaitTimeout(LabError):
    """A polled condition did not hold in time."""


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition", interval: float = 0.1) -> Any:
    """Call check until it returns something truthy and return that; WaitTimeout after timeout seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise WaitTimeout(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
