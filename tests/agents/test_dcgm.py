"""DCGM injection: re-injected every second while active, cleared on revert (with a fake dcgmi script)."""

from __future__ import annotations

from pathlib import Path

from agents.testing import running_agent
from lab.runtime.testing import wait_for
from lab.testing import LabHandle
from tests.agents.conftest import AGENT_SA, call, xid


def test_fake_dcgmi_reinjects_field_230_while_active(tmp_path: Path, api: LabHandle) -> None:
    """With dcgmi present the agent sets field 230 every second and sets it to 0 on revert."""
    log = tmp_path / "dcgmi.log"
    fake = tmp_path / "dcgmi"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    with running_agent(tmp_path, "gpu-1", api.url, api.token_for(AGENT_SA), extra_args=["--dcgmi", str(fake)],
                       api_ca_file=api.ca_file) as agent:
        assert call(agent.url, "POST", "/v1/faults", api.runner_token, xid(code=94))[0] == 201
        wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 2, timeout=10)
        assert log.read_text().splitlines()[0] == "test --inject --gpuid 0 -f 230 -v 94"
        _, st = call(agent.url, "GET", "/v1/faults/f-xid", api.runner_token)
        assert st["evidence"]["details"]["dcgm"] == "injecting"
        call(agent.url, "DELETE", "/v1/faults/f-xid", api.runner_token)
        assert log.read_text().splitlines()[-1] == "test --inject --gpuid 0 -f 230 -v 0"
