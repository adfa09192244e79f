"""Leases on a real agent process with fake GPUs: revert on request, revert-all, lease expiry, agent restart."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx

from agents.errors import BackendFailed
from agents.leases import Leases
from agents.limits import Limits
from agents.protocol import Evidence, RevertResult, XidParams
from agents.state import StateFile, StoredFault, UndoValue
from agents.testing import AgentProcess
from lab.runtime.testing import wait_for
from lab.testing import LabHandle
from tests.agents.conftest import call, degrade, metric, xid

XID_RE = re.compile(r"NVRM: Xid.*?: (\d+),")  # FAULTS.md §3: matches every driver form


def _gpu(agent: AgentProcess, index: int = 0) -> dict[str, Any]:
    devices: list[dict[str, Any]] = json.loads(agent.nvml_state.read_text())["devices"]
    return devices[index]


def _metrics(agent: AgentProcess) -> str:
    return httpx.get(agent.url + "/metrics", timeout=5).raise_for_status().text


def _state_faults(agent: AgentProcess) -> list[Any]:
    return list(json.loads(agent.state_file.read_text())["faults"])


def test_fake_xid_lands_and_is_reverted_on_request(agent: AgentProcess, api: LabHandle) -> None:
    """gpu-xid writes driver-format lines with the GPU's PCI address; revert stops it and clears the fake's XID."""
    status, body = call(agent.url, "POST", "/v1/faults", api.runner_token,
                        xid(count=3, interval_seconds=0.05, gpu_index=1, code=48))
    assert status == 201 and body["state"] == "active"
    assert _gpu(agent, 1)["last_xid"] == 48
    start = len(agent.kmsg_path.read_text().splitlines())
    wait_for(lambda: len(agent.kmsg_path.read_text().splitlines()) - start >= 2, timeout=5)
    lines = [ln for ln in agent.kmsg_path.read_text().splitlines() if "): 48," in ln]
    assert all(ln.startswith("<3>NVRM: Xid (PCI:0000:2a:00): 48, pid=") for ln in lines)
    assert [int(XID_RE.search(ln).group(1)) for ln in lines] == [48, 48, 48]  # type: ignore[union-attr]
    status, st = call(agent.url, "GET", "/v1/faults/f-xid", api.runner_token)
    assert st["evidence"]["landed"] and st["evidence"]["details"]["lines"] == 3
    assert "DCGM not available" in st["evidence"]["details"]["dcgm"]
    status, res = call(agent.url, "DELETE", "/v1/faults/f-xid", api.runner_token)
    assert status == 200 and res["reverted"] is True
    assert _gpu(agent, 1)["last_xid"] == 0 and _state_faults(agent) == []
    status, res = call(agent.url, "DELETE", "/v1/faults/f-xid", api.runner_token)
    assert status == 200 and res["reverted"] is False  # idempotent


def test_fake_degrade_lands_and_restores_exact_previous_settings(agent: AgentProcess, api: LabHandle) -> None:
    """gpu-degrade locks clocks, caps power and holds memory; revert restores each exactly."""
    before = _gpu(agent)
    status, _ = call(agent.url, "POST", "/v1/faults", api.runner_token,
                     degrade(sm_clock_mhz=700, power_limit_w=350, hold_memory_gib=20))
    assert status == 201
    during = _gpu(agent)
    assert (during["sm_clock_locked_mhz"], during["power_limit_w"], during["memory_used_mib"]) == (700, 350.0, 20480)
    _, st = call(agent.url, "GET", "/v1/faults/f-deg", api.runner_token)
    assert st["evidence"]["landed"] is True
    status, res = call(agent.url, "DELETE", "/v1/faults", api.runner_token)
    assert status == 200 and [r["reverted"] for r in res["results"]] == [True]
    assert _gpu(agent) == before


def test_fake_gpu_degrade_too_much_memory_is_refused_cleanly(agent: AgentProcess, api: LabHandle) -> None:
    """Holding more memory than the GPU has fails, and the clock lock applied before it is rolled back."""
    before = _gpu(agent)
    status, err = call(agent.url, "POST", "/v1/faults", api.runner_token, degrade(hold_memory_gib=500))
    assert status == 500 and "cannot hold 500" in err["message"]
    assert _gpu(agent) == before and _state_faults(agent) == []


def test_fake_abort_reverts_all_of_a_run(agent: AgentProcess, api: LabHandle) -> None:
    """DELETE /v1/faults?run_id= reverts every fault of that run (the runner's abort path)."""
    key = 'gameday_agent_reverts_total{kind="gpu-degrade",reason="rollback"}'
    before = metric(agent, key)
    call(agent.url, "POST", "/v1/faults", api.runner_token, xid())
    call(agent.url, "POST", "/v1/faults", api.runner_token, degrade(power_limit_w=200))
    assert len(_state_faults(agent)) == 2
    status, res = call(agent.url, "DELETE", "/v1/faults?run_id=run-1", api.runner_token)
    assert status == 200 and sorted(r["fault_id"] for r in res["results"]) == ["f-deg", "f-xid"]
    assert _state_faults(agent) == [] and _gpu(agent)["power_limit_w"] == 700.0
    assert metric(agent, key) == before + 1


def test_fake_lease_expiry_reverts_without_the_runner(agent: AgentProcess, api: LabHandle) -> None:
    """A fault nobody renews (the runner was SIGKILLed) is reverted by the agent when its lease ends."""
    key = 'gameday_agent_reverts_total{kind="gpu-degrade",reason="lease-expired"}'
    before = metric(agent, key)
    status, _ = call(agent.url, "POST", "/v1/faults", api.runner_token, degrade(ttl=0.5, sm_clock_mhz=300))
    assert status == 201 and _gpu(agent)["sm_clock_locked_mhz"] == 300
    # The agent reverts first and forgets the fault after: wait for both.
    wait_for(lambda: _gpu(agent)["sm_clock_locked_mhz"] is None and _state_faults(agent) == [], timeout=10)
    assert metric(agent, key) == before + 1


def test_fake_renewal_keeps_the_fault_and_refuses_unknown(agent: AgentProcess, api: LabHandle) -> None:
    """Renewing extends the lease; renewing a fault that is gone is a clear 404."""
    call(agent.url, "POST", "/v1/faults", api.runner_token, degrade(ttl=1))
    status, st = call(agent.url, "POST", "/v1/faults/f-deg/renew", api.runner_token, {"ttl_seconds": 60})
    assert status == 200 and st["lease_seconds_remaining"] > 30
    assert 'gameday_agent_lease_seconds_remaining{fault_id="f-deg"}' in _metrics(agent)
    status, err = call(agent.url, "POST", "/v1/faults/nope/renew", api.runner_token, {"ttl_seconds": 5})
    assert status == 404 and "nope" in err["message"]
    status, err = call(agent.url, "POST", "/v1/faults/f-deg/renew", api.runner_token, {"ttl_seconds": -1})
    assert status == 422


def test_fake_same_inject_twice_is_idempotent_and_conflicts_differ(agent: AgentProcess, api: LabHandle) -> None:
    """Re-sending an inject renews it (200); the same id with other parameters is a 409."""
    lines = agent.kmsg_path.read_text().count("name=gameday-") if agent.kmsg_path.exists() else 0
    assert call(agent.url, "POST", "/v1/faults", api.runner_token, xid())[0] == 201
    assert call(agent.url, "POST", "/v1/faults", api.runner_token, xid())[0] == 200
    assert agent.kmsg_path.read_text().count("name=gameday-") == lines + 1
    status, err = call(agent.url, "POST", "/v1/faults", api.runner_token, xid(code=13))
    assert status == 409 and "other parameters" in err["message"]


def test_fake_agent_killed_mid_fault_reverts_on_restart(agent: AgentProcess, api: LabHandle) -> None:
    """kill -9 the agent while it holds a fault; started again with the same state file, it reverts it."""
    call(agent.url, "POST", "/v1/faults", api.runner_token, xid(ttl=100))
    assert [f["fault_id"] for f in _state_faults(agent)] == ["f-xid"]
    agent.kill()
    assert [f["fault_id"] for f in _state_faults(agent)] == ["f-xid"]
    agent.start()
    assert _state_faults(agent) == []
    assert 'gameday_agent_reverts_total{kind="gpu-xid",reason="restart"} 1.0' in _metrics(agent)
    assert "restart: f-xid reverted" in agent.log_path.read_text()


class _FlakyFakeHandler:
    """A fake handler whose first revert fails (stands in for a backend that is briefly unavailable)."""

    def __init__(self) -> None:
        self.reverts = 0

    async def prepare(self, f: StoredFault) -> dict[str, UndoValue]:
        return {}

    async def apply(self, f: StoredFault) -> list[asyncio.Task[None]]:
        return []

    async def revert(self, f: StoredFault) -> None:
        self.reverts += 1
        if self.reverts == 1:
            raise BackendFailed("iptables is busy")

    async def evidence(self, f: StoredFault) -> Evidence:
        return Evidence(landed=True, summary="")


def test_fake_failed_revert_on_start_is_retried(tmp_path: Path) -> None:
    """A leftover whose revert fails at start does not stop the agent; the expiry loop retries until it is gone."""
    state = StateFile(tmp_path / "state.json", "n1")
    state.save([StoredFault(fault_id="old", run_id="r", params=XidParams(code=79), ttl_seconds=5, injected_at=0,
                            expires_at=1e12, state="active")])
    handler = _FlakyFakeHandler()

    async def scenario() -> tuple[list[RevertResult], list[StoredFault]]:
        leases = Leases({"gpu-xid": handler}, state, Limits(), log=lambda _m: None)
        results = await leases.start()
        deadline = time.monotonic() + 10
        while leases.faults and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await leases.stop(revert=False)
        return results, state.load()

    results, left = asyncio.run(scenario())
    assert [r.reverted for r in results] == [False] and "busy" in results[0].message
    assert left == [] and handler.reverts == 2


def test_fake_xid_lease_expiry_stops_lines_and_clears_field(agent: AgentProcess, api: LabHandle) -> None:
    """An unrenewed gpu-xid fault stops writing lines and clears the fake's XID field when its lease ends."""
    status, _ = call(agent.url, "POST", "/v1/faults", api.runner_token,
                     xid(fault_id="x-exp", ttl=0.5, code=31, count=100, interval_seconds=0.05))
    assert status == 201 and _gpu(agent)["last_xid"] == 31
    # The agent reverts first and forgets the fault after: wait for both.
    wait_for(lambda: _gpu(agent)["last_xid"] == 0 and _state_faults(agent) == [], timeout=10)
    written = agent.kmsg_path.read_text().count("): 31,")
    assert 1 <= written < 100
    assert call(agent.url, "GET", "/v1/faults/x-exp", api.runner_token)[0] == 404
