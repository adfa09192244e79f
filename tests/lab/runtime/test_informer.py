"""Tests for lab.runtime.informer across an API server OOM kill: quorum re-lists keep the runtime current."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp

from lab.apiserver.testing import RunningApiServer, running_apiserver
from lab.runtime.client import ApiClient
from lab.runtime.informer import Informer


def _call(api: RunningApiServer, method: str, path: str, body: dict[str, object] | None = None) -> int:
    req = urllib.request.Request(
        api.url + path, method=method, data=json.dumps(body).encode() if body else None,
        headers={"Authorization": f"Bearer {api.admin_token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def _oom_kill(api: RunningApiServer) -> None:
    """One quorum LIST of every configmap in the cluster (three times the watched namespace) kills the server."""
    try:
        _call(api, "GET", "/api/v1/configmaps")
    except (urllib.error.URLError, ConnectionError, OSError):
        return
    raise AssertionError("the API server was not OOM-killed")


async def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def test_informer_sees_a_deletion_made_while_the_watch_cache_reinitialises(tmp_path: Path) -> None:
    """After an OOM kill the watch gets 429 (cache initialising), so the informer re-lists by quorum read and sees the change."""
    # 200 watched configmaps (~0.7 MiB modelled per LIST) fit the 1 MiB heap; all 600 in the cluster do not. Garbage
    # is collected in 50 ms, so the informer's repeated re-lists while the cache initialises never add up.
    args = ["--memory-limit-mb", "1", "--restart-delay", "1", "--gc-seconds", "0.05", "--cache-init-seconds", "30"]
    with running_apiserver(tmp_path, extra_args=args) as api:
        assert _call(api, "POST", "/api/v1/namespaces", {"metadata": {"name": "bulk"}}) == 201
        for ns, count in (("default", 200), ("bulk", 400)):
            for i in range(count):
                assert _call(api, "POST", f"/api/v1/namespaces/{ns}/configmaps",
                             {"metadata": {"name": f"cm-{i:03d}"}, "data": {"k": "x" * 200}}) == 201

        async def scenario() -> None:
            async with aiohttp.ClientSession() as session:
                informer = Informer(ApiClient(api.url, api.admin_token, session), "/api/v1/namespaces/default/configmaps")
                task = asyncio.create_task(informer.run())
                try:
                    await asyncio.wait_for(informer.synced.wait(), 10)
                    assert len(informer.items()) == 200
                    await asyncio.to_thread(_oom_kill, api)
                    await _wait(lambda: _reachable(api), 15, "the restart")
                    assert _call(api, "GET", "/api/v1/namespaces/default/configmaps?resourceVersion=0") == 429
                    assert _call(api, "DELETE", "/api/v1/namespaces/default/configmaps/cm-007") == 200
                    await _wait(lambda: informer.get("default", "cm-007") is None, 15, "the deletion to be seen")
                    assert len(informer.items()) == 199
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

        asyncio.run(scenario())


def _reachable(api: RunningApiServer) -> bool:
    try:
        return _call(api, "GET", "/readyz") == 200
    except (urllib.error.URLError, ConnectionError, OSError):
        return False
