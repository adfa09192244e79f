"""The agent's HTTP API fuzzed with hypothesis (derandomized, so CI sees the same 400 requests each run): any method
on any of its paths (and others), with no token, a malformed one, a foreign one, an outsider's or the runner's, and
any JSON or raw body. Without a valid, allowed token nothing changes and the answer is 401/403 (or 404/405); no
answer is ever a 5xx or carries a traceback; the runner's malformed requests are refused with 4xx."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.testing import AgentProcess
from lab.testing import LabHandle
from tests.agents.conftest import OUTSIDER, call
from tests.agents.test_server import _snapshot

PATHS = ["/v1/faults", "/v1/faults/f-1", "/v1/faults/f-1/renew", "/v1/devices", "/v1/faults/../faults",
         "/v1/faults/%00", "/v1/faults/" + "x" * 300, "/v1", "/", "/v2/faults", "/v1/faults/f-1/renew/x"]
METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=12)
inject_like = st.fixed_dictionaries(
    {}, optional={"fault_id": json_values | st.text(max_size=80), "run_id": json_values,
                  "ttl_seconds": json_values | st.floats(allow_nan=False, allow_infinity=False),
                  "params": st.fixed_dictionaries({}, optional={
                      "kind": st.sampled_from(["gpu-xid", "gpu-degrade", "nccl-partition", "rm -rf"]) | json_values,
                      "code": json_values, "gpu_index": json_values, "sm_clock_mhz": json_values,
                      "peers": json_values, "mode": json_values})})
bodies = st.one_of(st.none(), json_values, inject_like, st.binary(max_size=200))
who = st.sampled_from(["none", "empty", "garbage", "basic", "foreign", "outsider", "runner"])


def _send(url: str, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, bytes]:
    data = body if isinstance(body, bytes) else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url + path, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(method=st.sampled_from(METHODS), path=st.sampled_from(PATHS), caller=who, body=bodies)
def test_no_request_breaks_the_agent_or_gets_past_its_gate(agent: AgentProcess, api: LabHandle, foreign: str,
                                                           method: str, path: str, caller: str, body: Any) -> None:
    """Every answer is below 500 and traceback-free; only the runner's token gets anything but 401/403/404/405, and
    nothing else changes the agent's state, kernel log or GPUs."""
    tokens = {"runner": api.runner_token, "outsider": api.token_for(OUTSIDER), "foreign": foreign}
    fixed = {"none": None, "empty": "Bearer ", "garbage": "Bearer not.a.token;x", "basic": "Basic YTpi"}
    auth = fixed[caller] if caller in fixed else f"Bearer {tokens[caller]}"
    headers = {"Content-Type": "application/json", **({"Authorization": auth} if auth is not None else {})}
    before = _snapshot(agent)
    status, raw = _send(agent.url, method, path, headers, body)
    assert status < 500, (status, raw[:500])
    assert b"Traceback" not in raw and b'File "' not in raw, raw[:500]
    if caller != "runner":
        assert status in (401, 403, 404, 405), (caller, method, path, status, raw[:300])
        assert _snapshot(agent) == before, (caller, method, path)
    else:
        call(agent.url, "DELETE", "/v1/faults", api.runner_token)  # whatever got in, out again before the next
