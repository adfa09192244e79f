"""In-process tests of the APF dispatcher: seat shares, exempt bypass, queue-full, time-out, Reject, live config."""

from __future__ import annotations

import asyncio

import pytest

from lab.apiserver import apf_defaults
from lab.apiserver.apf import FlowControl
from lab.apiserver.apf_match import RequestInfo
from lab.apiserver.errors import ApiError
from lab.apiserver.metrics import Metrics
from lab.apiserver.registry import Registry
from lab.apiserver.resources import BY_KEY
from lab.apiserver.store import Store

PLCS = BY_KEY["prioritylevelconfigurations.flowcontrol.apiserver.k8s.io"]
SCHEMAS = BY_KEY["flowschemas.flowcontrol.apiserver.k8s.io"]


def _setup(seats: int = 10, queue_timeout: float = 15.0) -> tuple[FlowControl, Registry]:
    store = Store()
    reg = Registry(store)
    for obj in apf_defaults.priority_levels():
        reg.create(PLCS, "", obj)
    for obj in apf_defaults.flow_schemas():
        reg.create(SCHEMAS, "", obj)
    return FlowControl(store, Metrics(store), seats, queue_timeout), reg


def _info(
    user: str, groups: tuple[str, ...], verb: str = "list", resource: str = "pods", group: str = ""
) -> RequestInfo:
    return RequestInfo(
        user,
        (*groups, "system:authenticated"),
        verb,
        f"/api/v1/{resource}",
        True,
        group,
        "v1",
        resource,
        "",
        "kube-node-lease",
        "",
    )


SA = _info("system:serviceaccount:default:x", ("system:serviceaccounts", "system:serviceaccounts:default"))
NODE = _info("system:node:n1", ("system:nodes",), "update", "leases", "coordination.k8s.io")
ADMIN = _info("admin", ("system:masters",))


def test_classification_follows_default_schemas() -> None:
    """Service accounts land in workload-low, node leases in node-high, masters in exempt."""
    flow, _ = _setup()
    assert flow.classify(SA)[1].name == "workload-low"  # type: ignore[union-attr]
    assert flow.classify(NODE)[1].name == "node-high"  # type: ignore[union-attr]
    assert flow.classify(ADMIN)[1].name == "exempt"  # type: ignore[union-attr]
    assert flow.classify(_info("bob", ()))[1].name == "global-default"  # type: ignore[union-attr]


def test_seats_follow_shares() -> None:
    """Each level gets ceil(total * shares / sum of shares) seats."""
    flow, _ = _setup(seats=60)
    flow.classify(SA)
    assert flow.levels["workload-low"].seats == 25  # ceil(60 * 100 / 245)
    assert flow.levels["node-high"].seats == 10  # ceil(60 * 40 / 245)


def test_queue_full_and_exempt_bypass() -> None:
    """With seats taken and the hand's queues full the request is rejected; exempt still runs."""

    async def run() -> None:
        flow, reg = _setup(seats=2)
        reg.patch(
            PLCS,
            "",
            "workload-low",
            {
                "spec": {
                    "type": "Limited",
                    "limited": {
                        "nominalConcurrencyShares": 100,
                        "limitResponse": {
                            "type": "Queue",
                            "queuing": {"queues": 1, "handSize": 1, "queueLengthLimit": 1},
                        },
                    },
                }
            },
        )
        held = await flow.acquire(SA, 10)  # width clamps to the level's seats: the level is full
        waiting = asyncio.create_task(flow.acquire(SA, 1))
        await asyncio.sleep(0)
        with pytest.raises(ApiError) as err:
            await flow.acquire(SA, 1)
        assert err.value.code == 429 and err.value.headers == {"Retry-After": "1"}
        exempt = await flow.acquire(ADMIN, 1)
        flow.release(exempt)
        flow.release(held)
        granted = await asyncio.wait_for(waiting, 1)
        assert granted.level.name == "workload-low"
        flow.release(granted)

    asyncio.run(run())


def test_queue_timeout_rejects() -> None:
    """A request waiting longer than the queue timeout is rejected with 429 and counted as time-out."""

    async def run() -> None:
        flow, _ = _setup(seats=2, queue_timeout=0.2)
        held = await flow.acquire(SA, 10)
        with pytest.raises(ApiError) as err:
            await flow.acquire(SA, 1)
        assert err.value.code == 429
        flow.release(held)
        sample = flow.metrics.registry.get_sample_value(
            "apiserver_flowcontrol_rejected_requests_total",
            {"priority_level": "workload-low", "flow_schema": "service-accounts", "reason": "time-out"},
        )
        assert sample == 1.0

    asyncio.run(run())


def test_reject_level_and_live_break_glass() -> None:
    """catch-all rejects at once; a FlowSchema created later re-routes the same user immediately."""

    async def run() -> None:
        flow, reg = _setup(seats=1)
        reg.patch(
            SCHEMAS, "", "global-default", {"spec": {"priorityLevelConfiguration": {"name": "catch-all"}}}
        )
        bob = _info("bob", ())
        held = await flow.acquire(bob, 1)
        with pytest.raises(ApiError):
            await flow.acquire(bob, 1)
        flow.release(held)
        reg.create(PLCS, "", {"metadata": {"name": "bg"}, "spec": {"type": "Exempt", "exempt": {}}})
        reg.create(
            SCHEMAS,
            "",
            {
                "metadata": {"name": "bg"},
                "spec": {
                    "priorityLevelConfiguration": {"name": "bg"},
                    "matchingPrecedence": 10,
                    "rules": [
                        {
                            "subjects": [{"kind": "User", "user": {"name": "bob"}}],
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
            },
        )
        tickets = [await flow.acquire(bob, 1) for _ in range(5)]
        assert {t.schema_name for t in tickets} == {"bg"}

    asyncio.run(run())


def test_dangling_flow_schema_is_skipped() -> None:
    """A FlowSchema naming a missing priority level is skipped; the next matching one applies."""
    flow, reg = _setup()
    reg.create(
        SCHEMAS,
        "",
        {
            "metadata": {"name": "dangling"},
            "spec": {
                "priorityLevelConfiguration": {"name": "nope"},
                "matchingPrecedence": 5,
                "rules": [
                    {
                        "subjects": [{"kind": "Group", "group": {"name": "system:authenticated"}}],
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
        },
    )
    schema, level = flow.classify(SA)
    assert schema is not None and schema["metadata"]["name"] == "service-accounts"
    assert level is not None and level.name == "workload-low"
