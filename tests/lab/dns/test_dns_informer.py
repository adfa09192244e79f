"""Tests for lab.dns.informer: list+watch against the fake API server's scripted failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from lab.dns.informer import Informer, object_key
from lab.dns.testing import poll
from tests.lab.dns.fake_kubeapi import TOKEN, FakeKubeApi, service

pytestmark = pytest.mark.anyio


def name_of(obj: dict[str, Any]) -> str:
    """Convert an object to its name."""
    return str(obj["metadata"]["name"])


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session carrying the fake API's token."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s:
        yield s


async def test_list_honours_429_retry_after(fake_api: FakeKubeApi, session: aiohttp.ClientSession) -> None:
    """A 429 with Retry-After: 1 on the first LIST delays the next attempt by about a second."""
    fake_api.fail_next = [(429, {"Retry-After": "1"})]
    reach: list[bool] = []
    informer = Informer(session, fake_api.url, "/api/v1/services", name_of, on_reachable=reach.append)
    informer.start()
    try:
        await poll(informer.synced.is_set)
        first, second = fake_api.request_times[:2]
        assert second - first >= 0.9
        assert set(informer.items) == {"default/web", "default/model"} and reach[-1] is True
    finally:
        await informer.stop()


async def test_server_errors_mark_unreachable_then_recover(
    fake_api: FakeKubeApi, session: aiohttp.ClientSession
) -> None:
    """5xx answers report the API unreachable; the informer retries with backoff until it syncs."""
    fake_api.fail_next = [(503, {}), (503, {})]
    reach: list[bool] = []
    informer = Informer(session, fake_api.url, "/api/v1/services", name_of, on_reachable=reach.append)
    informer.start()
    try:
        await poll(informer.synced.is_set)
        assert reach[:2] == [False, False] and reach[-1] is True
    finally:
        await informer.stop()


async def test_field_selector_and_events(fake_api: FakeKubeApi, session: aiohttp.ClientSession) -> None:
    """A fieldSelector'd informer keeps only its object and follows MODIFIED and DELETED events."""
    changes: list[int] = []
    informer = Informer(
        session,
        fake_api.url,
        "/api/v1/namespaces/default/services",
        name_of,
        field_selector="metadata.name=web",
        accept=lambda o: o["metadata"]["name"] == "web",
        on_change=lambda: changes.append(1),
    )
    informer.start()
    try:
        await poll(informer.synced.is_set)
        assert set(informer.items) == {"default/web"}
        fake_api.put("services", service("web", cluster_ip="10.96.0.21"))
        fake_api.put("services", service("other", cluster_ip="10.96.0.22"))
        await poll(lambda: len(changes) >= 2)
        fake_api.delete("services", "default", "web")
        await poll(lambda: not informer.items)
        assert object_key({"metadata": {"name": "n1"}}) == "n1"
    finally:
        await informer.stop()
