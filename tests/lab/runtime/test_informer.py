"""Tests for lab.runtime.informer against the real kube-apiserver: its cache survives the server's kill and restart
and follows the changes made afterwards."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
from collections.abc import Callable
from pathlib import Path

import aiohttp
from kubernetes import client

from lab.runtime.client import ApiClient
from lab.runtime.informer import Informer
from lab.testing import LabHandle, running_api

COUNT = 100


async def _wait(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``predicate`` in a thread (it may block) until truthy, leaving the loop to the informer."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(predicate):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)


def _supervised(api: LabHandle) -> dict[str, int]:
    """The API server's supervisor status: its current pid and how often it was restarted."""
    status = json.loads(Path(api.endpoints["supervisors"]["kube-apiserver"]).read_text())
    return {"pid": int(status["pid"]), "restarts": int(status["restarts"])}


def _ready(api: LabHandle) -> bool:
    return api.kubectl("get", "--raw", "/readyz", context="lab-admin", timeout=10).returncode == 0


def test_informer_follows_changes_made_after_the_api_server_was_killed_and_restarted(tmp_path: Path) -> None:
    """A synced informer whose API server is SIGKILLed and restarted by its supervisor re-lists and re-watches: a
    deletion and a creation made after the restart both reach its cache."""
    with running_api(tmp_path, restart_backoff_seconds=1) as api, api.client() as admin:
        core = client.CoreV1Api(admin)
        for i in range(COUNT):
            core.create_namespaced_config_map("default", client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=f"cm-{i:03d}"), data={"k": "x" * 200}))

        async def scenario() -> None:
            tls = ssl.create_default_context(cafile=str(api.ca_file))
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ssl=tls)) as session:
                informer = Informer(ApiClient(api.url, api.admin_token, session), "/api/v1/namespaces/default/configmaps")
                task = asyncio.create_task(informer.run())
                try:
                    await asyncio.wait_for(informer.synced.wait(), 30)
                    assert {name for _, name in informer.store} >= {f"cm-{i:03d}" for i in range(COUNT)}
                    first = _supervised(api)
                    os.kill(first["pid"], signal.SIGKILL)
                    await _wait(lambda: (s := _supervised(api))["restarts"] == 1 and s["pid"] != first["pid"], 30,
                                "the API server restarted")
                    await _wait(lambda: _ready(api), 60, "the restarted API server ready")
                    await asyncio.to_thread(core.delete_namespaced_config_map, "cm-007", "default")
                    await asyncio.to_thread(core.create_namespaced_config_map, "default", client.V1ConfigMap(
                        metadata=client.V1ObjectMeta(name="after-restart")))
                    await _wait(lambda: informer.get("default", "cm-007") is None
                                and informer.get("default", "after-restart") is not None, 30,
                                "the deletion and the creation seen")
                    assert informer.get("default", "cm-008") is not None
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

        asyncio.run(scenario())
