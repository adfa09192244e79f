"""The chaostoolkit probe and fault: activities run through chaoslib, failures wrapped into typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from blueprints.faults import ChaosToolkitFault
from blueprints.probes import ChaosToolkitProbe
from tasks.errors import ActivityFailed, ProbeError
from tasks.faults.base import FaultContext
from tasks.faults.chaostoolkit import ChaosToolkitBehaviour
from tasks.probes import ProbeContext, evaluate


def test_python_probe_with_tolerance() -> None:
    """A python provider's result is checked with chaoslib's own tolerance semantics."""
    probe = ChaosToolkitProbe(name="c", provider={"type": "python", "module": "os.path", "func": "isdir",
                                                  "arguments": {"s": "/"}}, tolerance=True)
    res = evaluate(probe, ProbeContext())
    assert res.ok and res.value is True


def test_failing_extension_code_cannot_be_evaluated() -> None:
    """An extension that raises (or cannot be imported) is a ProbeError, not a pass."""
    probe = ChaosToolkitProbe(name="c", provider={"type": "python", "module": "no_such_module_x", "func": "f"})
    with pytest.raises(ProbeError):
        evaluate(probe, ProbeContext())


def test_fault_runs_action_verify_and_rollback(tmp_path: Path) -> None:
    """The fault's action, verify probe and rollback run as process activities, in that order."""
    marker = tmp_path / "marker"
    spec = ChaosToolkitFault(
        action={"provider": {"type": "process", "path": "touch", "arguments": str(marker)}},
        verify={"provider": {"type": "python", "module": "os.path", "func": "exists", "arguments": {"path": str(marker)}}},
        rollback={"provider": {"type": "process", "path": "rm", "arguments": f"-f {marker}"}},
    )
    b, ctx = ChaosToolkitBehaviour(), FaultContext(cluster=None, run_id="ctk")
    inj = b.plan(spec, ctx, run_id="ctk", stage="s", fault_id="f")
    assert not inj.cluster_scoped_ledger
    b.inject(inj, ctx)
    assert b.verify(inj, ctx).landed and marker.exists()
    b.rollback(inj, ctx)
    assert not marker.exists()


def test_fault_action_failure_is_activity_failed() -> None:
    """An action whose extension code raises becomes ActivityFailed."""
    spec = ChaosToolkitFault(action={"provider": {"type": "python", "module": "no_such_module_x", "func": "f"}})
    b, ctx = ChaosToolkitBehaviour(), FaultContext(cluster=None, run_id="ctk")
    with pytest.raises(ActivityFailed):
        b.inject(b.plan(spec, ctx, run_id="ctk", stage="s", fault_id="f"), ctx)
