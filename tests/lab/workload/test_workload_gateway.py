"""Tests for lab.workload.gateway and lab.workload.resolver: DNS (the real CoreDNS) → model server, errors by cause."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from lab.workload.gateway import GatewayProgram
from lab.workload.model_server import ModelServerProgram
from tests.lab.workload.conftest import CoreDns, Dns, Namespace, Start, metric, poll

pytestmark = pytest.mark.anyio
MODEL_IPS = ["127.0.54.2", "127.0.54.3"]
DNS_IP = "127.0.54.10"


async def setup(
    start: Start, dns_server: Dns, namespace: Namespace, **gateway_env: str
) -> tuple[CoreDns, list[Any], Any, str]:
    """Start two model servers on one port, CoreDNS naming them `model` and a gateway; returns them and its URL."""
    first, _ = await start(ModelServerProgram, MODEL_IPS[0], {"PORT": "0", "COMPUTE_MS": "1"})
    second, _ = await start(ModelServerProgram, MODEL_IPS[1], {"PORT": str(first.port), "COMPUTE_MS": "1"})
    server = await dns_server(DNS_IP, {namespace.name("model"): MODEL_IPS})
    env = {
        "PORT": "0",
        "MODEL_SERVICE": namespace.name("model"),
        "MODEL_PORT": str(first.port),
        "DNS_SERVER": f"{DNS_IP}:{server.port}",
        "DNS_TIMEOUT": "0.5",
        **gateway_env,
    }
    gateway, _ = await start(GatewayProgram, "127.0.54.20", env)
    return server, [first, second], gateway, f"http://127.0.54.20:{gateway.port}/v1/infer"


async def post(url: str) -> tuple[int, dict[str, Any]]:
    """POST one inference request; returns status and JSON body."""
    async with aiohttp.ClientSession() as session, session.post(url, json={"prompt": "x"}) as resp:
        return resp.status, await resp.json()


def requests(gateway: GatewayProgram, code: str, cause: str) -> float:
    """gateway_requests_total for one code and cause."""
    return metric("gateway_requests_total", gateway.pod, code=code, cause=cause)


async def test_success_round_robin_and_client_cache(start: Start, dns_server: Dns, namespace: Namespace) -> None:
    """Requests succeed, spread over both model servers, and DNS answers are reused for their TTL."""
    _, _, gateway, url = await setup(start, dns_server, namespace)
    pods = set()
    for _ in range(4):
        status, body = await post(url)
        assert status == 200
        pods.add(body["pod"])
    assert len(pods) == 2
    assert requests(gateway, "200", "none") == 4
    assert metric("gateway_dns_lookups_total", gateway.pod, result="ok") == 1
    assert metric("gateway_dns_lookups_total", gateway.pod, result="cache_hit") == 3


async def test_dns_down_counts_dns_errors(start: Start, dns_server: Dns, namespace: Namespace) -> None:
    """With client caching off, stopping CoreDNS makes requests fail with cause `dns` (503)."""
    server, _, gateway, url = await setup(start, dns_server, namespace, CLIENT_TTL_CAP="0")
    assert (await post(url))[0] == 200
    await server.stop()
    status, body = await post(url)
    assert status == 503 and body["cause"] == "dns"
    assert requests(gateway, "503", "dns") == 1


async def test_nxdomain_is_a_dns_error(start: Start, dns_server: Dns, namespace: Namespace) -> None:
    """A service name that does not exist fails with cause `dns` and lookup result `nxdomain`."""
    _, _, gateway, url = await setup(start, dns_server, namespace, MODEL_SERVICE=namespace.name("missing"))
    status, _ = await post(url)
    assert status == 503
    assert metric("gateway_dns_lookups_total", gateway.pod, result="nxdomain") == 1


async def test_model_servers_stopped_counts_upstream_errors(
    start: Start, dns_server: Dns, namespace: Namespace
) -> None:
    """With the model servers stopped (DNS still answering), requests fail with cause `upstream` (502)."""
    _, models, gateway, url = await setup(start, dns_server, namespace)
    for model in models:
        await model.stop()
    for _ in range(2):
        status, body = await post(url)
        assert status == 502 and body["cause"] == "upstream"
    assert requests(gateway, "502", "upstream") == 2


async def test_slow_upstream_counts_timeouts(start: Start, dns_server: Dns, namespace: Namespace) -> None:
    """A model server slower than UPSTREAM_TIMEOUT yields 504 with cause `timeout`."""
    slow, _ = await start(ModelServerProgram, "127.0.54.4", {"PORT": "0", "COMPUTE_MS": "2000"})
    server = await dns_server(DNS_IP, {namespace.name("model"): ["127.0.54.4"]})
    env = {
        "PORT": "0",
        "MODEL_SERVICE": namespace.name("model"),
        "MODEL_PORT": str(slow.port),
        "DNS_SERVER": f"{DNS_IP}:{server.port}",
        "UPSTREAM_TIMEOUT": "0.2",
    }
    gateway, _ = await start(GatewayProgram, "127.0.54.20", env)
    status, body = await post(f"http://127.0.54.20:{gateway.port}/v1/infer")
    assert status == 504 and body["cause"] == "timeout"
    await poll(lambda: requests(gateway, "504", "timeout") == 1)
