"""APF over HTTP: a LIST storm from a workload-low service account is throttled with 429s while a
break-glass FlowSchema + PriorityLevelConfiguration created through the API keeps the runner served."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes import client

from lab.apiserver.testing import RunningApiServer, running_apiserver

STORM_USER = "system:serviceaccount:default:storm"
PODS = 1500


@pytest.fixture(scope="module")
def apf_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApiServer]:
    """A small server (10 seats) holding 1,500 pods, with workload-low squeezed to one short queue."""
    with running_apiserver(
        tmp_path_factory.mktemp("apf"), nodes=["node-a"], seats=10, service_accounts=[("default", "storm")]
    ) as api:
        asyncio.run(_load_pods(api))
        flow = client.FlowcontrolApiserverV1Api(api.client())
        flow.patch_priority_level_configuration(
            "workload-low",
            {
                "spec": {
                    "limited": {
                        "limitResponse": {
                            "type": "Queue",
                            "queuing": {"queues": 1, "handSize": 1, "queueLengthLimit": 2},
                        }
                    }
                }
            },
        )
        yield api


async def _load_pods(api: RunningApiServer) -> None:
    headers = {"Authorization": f"Bearer {api.admin_token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        sem = asyncio.Semaphore(32)

        async def one(n: int) -> None:
            body = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"p-{n}", "labels": {"app": "x"}},
                "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "lab/pause"}]},
            }
            async with sem, session.post(f"{api.url}/api/v1/namespaces/default/pods", json=body) as resp:
                assert resp.status == 201

        await asyncio.gather(*(one(n) for n in range(PODS)))


async def _storm(api: RunningApiServer, probe: Any, clients: int = 24, rounds: int = 15) -> dict[str, Any]:
    """Run concurrent cluster-wide pod LISTs as the storm service account; call ``probe`` mid-storm."""
    token = api.token_for(STORM_USER)
    result: dict[str, Any] = {"codes": [], "retry_after": set(), "reasons": set(), "probe": None}
    rejected = asyncio.Event()

    stop = asyncio.Event()

    async def one(session: aiohttp.ClientSession) -> None:
        for _ in range(rounds):
            if stop.is_set():
                return
            async with session.get(
                f"{api.url}/api/v1/pods", headers={"Authorization": f"Bearer {token}"}
            ) as resp:
                body = await resp.json()
                result["codes"].append(resp.status)
                if resp.status == 429:
                    result["retry_after"].add(resp.headers.get("Retry-After"))
                    result["reasons"].add((body["kind"], body["reason"], body["code"]))
                    rejected.set()

    async with aiohttp.ClientSession() as session:
        storm = [asyncio.create_task(one(session)) for _ in range(clients)]
        await asyncio.wait_for(rejected.wait(), 60)
        result["probe"] = await probe(session)
        stop.set()
        await asyncio.gather(*storm)
    return result


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _metrics(api: RunningApiServer) -> str:
    req = urllib.request.Request(f"{api.url}/metrics", headers={"Authorization": f"Bearer {api.admin_token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(resp.read().decode())


def test_list_storm_gets_429_and_break_glass_is_served(apf_api: RunningApiServer) -> None:
    """Storm LISTs are rejected with 429 + Retry-After: 1; the runner, matched by a break-glass schema, gets 200."""
    admin = apf_api.client()
    flow = client.FlowcontrolApiserverV1Api(admin)
    flow.create_priority_level_configuration(
        {
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "PriorityLevelConfiguration",
            "metadata": {"name": "break-glass"},
            "spec": {
                "type": "Limited",
                "limited": {
                    "nominalConcurrencyShares": 100,
                    "limitResponse": {
                        "type": "Queue",
                        "queuing": {"queues": 4, "handSize": 2, "queueLengthLimit": 50},
                    },
                },
            },
        }
    )
    schema = flow.create_flow_schema(
        {
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "FlowSchema",
            "metadata": {"name": "break-glass"},
            "spec": {
                "priorityLevelConfiguration": {"name": "break-glass"},
                "matchingPrecedence": 50,
                "distinguisherMethod": {"type": "ByUser"},
                "rules": [
                    {
                        "subjects": [{"kind": "User", "user": {"name": "gameday-runner"}}],
                        "resourceRules": [
                            {
                                "verbs": ["*"],
                                "apiGroups": ["*"],
                                "resources": ["*"],
                                "namespaces": ["*"],
                                "clusterScope": True,
                            }
                        ],
                    }
                ],
            },
        }
    )
    before = _metrics(apf_api)

    async def probe(session: aiohttp.ClientSession) -> tuple[int, str]:
        async with session.get(
            f"{apf_api.url}/api/v1/namespaces/default/pods?limit=5",
            headers={"Authorization": f"Bearer {apf_api.runner_token}"},
        ) as resp:
            await resp.read()
            return resp.status, resp.headers.get("X-Kubernetes-PF-FlowSchema-UID", "")

    result = asyncio.run(_storm(apf_api, probe))
    assert 429 in result["codes"] and 200 in result["codes"]
    assert result["retry_after"] == {"1"}
    assert result["reasons"] == {("Status", "TooManyRequests", 429)}
    assert result["probe"] == (200, schema.metadata.uid)
    after = _metrics(apf_api)
    labels = {"priority_level": "workload-low", "flow_schema": "service-accounts", "reason": "queue-full"}
    assert _metric(after, "apiserver_flowcontrol_rejected_requests_total", **labels) > _metric(
        before, "apiserver_flowcontrol_rejected_requests_total", **labels
    )
    assert _metric(after, "apiserver_request_total", verb="LIST", resource="pods", code="429") > 0
    assert _metric(after, "apiserver_request_duration_seconds_count", verb="LIST", resource="pods") > _metric(
        before, "apiserver_request_duration_seconds_count", verb="LIST", resource="pods"
    )
    assert (
        _metric(
            after,
            "apiserver_flowcontrol_request_wait_duration_seconds_count",
            priority_level="workload-low",
            execute="true",
        )
        > 0
    )


def test_priority_headers_name_the_level(apf_api: RunningApiServer) -> None:
    """Responses carry the UIDs of the matched FlowSchema and PriorityLevelConfiguration."""
    flow = client.FlowcontrolApiserverV1Api(apf_api.client())
    sa_schema = flow.read_flow_schema("service-accounts")
    level = flow.read_priority_level_configuration("workload-low")

    async def get() -> tuple[str, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{apf_api.url}/api/v1/namespaces/default/pods?limit=1",
                headers={"Authorization": f"Bearer {apf_api.token_for(STORM_USER)}"},
            ) as resp,
        ):
            return (
                resp.headers["X-Kubernetes-PF-FlowSchema-UID"],
                resp.headers["X-Kubernetes-PF-PriorityLevel-UID"],
            )

    assert asyncio.run(get()) == (sa_schema.metadata.uid, level.metadata.uid)


@pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Basic YTpi"])
def test_missing_or_unknown_token_is_401(apf_api: RunningApiServer, header: str | None) -> None:
    """Requests without a token or with an unknown one get a 401 Unauthorized Status."""

    async def get() -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": header} if header else {}
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{apf_api.url}/api/v1/namespaces", headers=headers) as resp,
        ):
            return resp.status, await resp.json()

    status, body = asyncio.run(get())
    assert status == 401 and (body["kind"], body["reason"], body["code"]) == ("Status", "Unauthorized", 401)


def test_health_is_public_but_metrics_need_a_token(apf_api: RunningApiServer) -> None:
    """/readyz answers without a token; /metrics refuses anonymous scrapes unless --anonymous-metrics."""

    async def get(path: str) -> int:
        async with aiohttp.ClientSession() as session, session.get(f"{apf_api.url}{path}") as resp:
            return resp.status

    assert asyncio.run(get("/readyz")) == 200
    assert asyncio.run(get("/metrics")) == 401


def test_anonymous_metrics_flag(tmp_path: Path) -> None:
    """With anonymous_metrics the server lets Prometheus scrape /metrics without a token."""

    async def get(url: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as resp:
            return resp.status, await resp.text()

    with running_apiserver(tmp_path, anonymous_metrics=True) as api:
        status, text = asyncio.run(get(api.url))
    assert status == 200 and "apiserver_storage_objects" in text
