"""DCGM field injection for gpu-xid: set field 230 (``DCGM_FI_DEV_XID_ERRORS``) with ``dcgmi``.

Injected DCGM values expire quickly, so the XID fault re-injects every second while active (the loop
lives in ``agents/faults/xid.py``). Without ``dcgmi`` the backend says "not available" and the fault's
evidence reports that instead of failing: the kernel-log path still works.
"""

from __future__ import annotations

import shutil

from agents.backends import proc
from agents.errors import AgentFailure

XID_FIELD = 230


class Dcgm:
    """Thin wrapper over ``dcgmi test --inject``."""

    def __init__(self, dcgmi: str | None = None) -> None:
        self.dcgmi = dcgmi or shutil.which("dcgmi")

    @property
    def available(self) -> bool:
        """Whether ``dcgmi`` was found."""
        return self.dcgmi is not None

    def describe(self) -> str:
        """A line for evidence."""
        return f"dcgmi at {self.dcgmi}" if self.dcgmi else "DCGM not available (no dcgmi on PATH)"

    async def inject(self, gpu: int, code: int) -> str | None:
        """Set field 230 of ``gpu`` to ``code``; returns an error text, or None on success."""
        if self.dcgmi is None:
            return self.describe()
        argv = [self.dcgmi, "test", "--inject", "--gpuid", str(gpu), "-f", str(XID_FIELD), "-v", str(code)]
        try:
            res = await proc.run(argv, timeout=5)
        except AgentFailure as exc:
            return exc.message
        return None if res.rc == 0 else f"dcgmi rc={res.rc}: {(res.err or res.out).strip()[:200]}"
