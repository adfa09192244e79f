"""The API server's memory model: heap accounting, OOM kill, CrashLoopBackOff restarts, watch cache re-initialisation."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from lab.apiserver.memory import HeapModel, Lifecycle
from lab.apiserver.resources import BY_KEY
from lab.apiserver.store import Table
from lab.apiserver.testing import RunningApiServer, running_apiserver
from tests.conftest import poll


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def configmaps(n: int, size: int = 200) -> Table:
    """A table of ``n`` configmaps of about ``size`` bytes each."""
    table = Table(BY_KEY["configmaps"])
    for i in range(n):
        table.put("default", f"cm-{i:04d}", {"metadata": {"name": f"cm-{i:04d}"}, "data": {"k": "x" * size}})
    return table


def test_heap_charges_listed_bytes_times_amplification_and_garbage_decays() -> None:
    """A LIST holds objects x mean size x amplification; released, it becomes garbage that decays with the GC constant."""
    clock = Clock()
    table = configmaps(50)
    heap = HeapModel(limit=0, amplification=4.0, gc_seconds=2.0, clock=clock)
    mean = heap.mean_size(table)
    assert 200 < mean < 300
    charge = heap.charge(50, table)
    assert charge.nbytes == pytest.approx(50 * mean * 4)
    assert heap.used() == pytest.approx(charge.nbytes)
    heap.release(charge)
    heap.release(charge)  # idempotent
    assert heap.live == 0 and heap.used() == pytest.approx(charge.nbytes)
    clock.now += 2.0
    assert heap.used() == pytest.approx(charge.nbytes / 2.718281828, rel=1e-3)


def test_heap_past_the_limit_calls_oom_once_per_charge_and_reset_forgets_old_charges() -> None:
    """Charges past the limit call on_oom; after reset() a charge of the killed process is ignored on release."""
    clock = Clock()
    table = configmaps(100)
    one = 100 * HeapModel(0).mean_size(table) * 8
    heap = HeapModel(limit=int(2.5 * one), clock=clock)
    kills: list[float] = []
    heap.on_oom = lambda: kills.append(heap.used())
    first, second = heap.charge(100, table), heap.charge(100, table)
    assert kills == []
    third = heap.charge(100, table)
    assert len(kills) == 1 and kills[0] > heap.limit
    heap.reset()
    for c in (first, second, third):
        heap.release(c)
    assert heap.used() == 0.0


def test_lifecycle_backs_off_like_crashloopbackoff_and_resets_after_a_quiet_stretch() -> None:
    """Restart delays double up to the cap, the cache initialises after each restart, and a long uptime resets the delay."""
    clock = Clock()
    life = Lifecycle(restart_delay=1.0, restart_delay_max=3.0, cache_init_seconds=5.0, reset_after=60.0, clock=clock)
    assert not life.down() and not life.initializing()
    assert [life.killed(), life.killed(), life.killed()] == [1.0, 2.0, 3.0]
    assert life.down() and not life.initializing()
    clock.now += 3.0
    life.started()
    assert not life.down() and life.initializing()
    clock.now += 5.0
    assert not life.initializing()
    clock.now += 61.0
    assert life.killed() == 1.0 and life.kills == 4


def _get(api: RunningApiServer, path: str) -> tuple[int, Any]:
    req = urllib.request.Request(api.url + path, headers={"Authorization": f"Bearer {api.admin_token}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"null") if "json" in resp.headers.get(
                "Content-Type", "") else resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def _reachable(api: RunningApiServer) -> bool:
    try:
        return _get(api, "/readyz")[0] == 200
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


def _metric(api: RunningApiServer, name: str) -> float:
    text = _get(api, "/metrics")[1]
    match = re.search(rf"^{name}(?:_total)? (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


@pytest.fixture()
def small_heap(tmp_path: Path) -> Any:
    """An API server with a 1 MiB modelled heap, 2 s restart delay and 4 s watch-cache initialisation, 300 configmaps."""
    args = ["--memory-limit-mb", "1", "--restart-delay", "2", "--restart-delay-max", "4",
            "--cache-init-seconds", "4", "--gc-seconds", "5"]
    with running_apiserver(tmp_path, extra_args=args) as api:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "x" * 200}}
        for i in range(300):
            req = urllib.request.Request(
                api.url + "/api/v1/namespaces/default/configmaps",
                data=json.dumps({**body, "metadata": {"name": f"cm-{i:04d}"}}).encode(),
                headers={"Authorization": f"Bearer {api.admin_token}", "Content-Type": "application/json"},
                method="POST")
            urllib.request.urlopen(req, timeout=5).close()
        yield api


def test_a_burst_of_big_lists_oom_kills_the_server_which_restarts_with_its_objects(small_heap: RunningApiServer) -> None:
    """Back-to-back quorum LISTs pass the 1 MiB heap: the server stops answering, comes back, and keeps every object."""
    api = small_heap
    started = _metric(api, "process_start_time_seconds")
    assert _get(api, "/api/v1/configmaps")[0] == 200  # one LIST (~0.5 MiB modelled) fits
    refused = 0
    for _ in range(10):
        try:
            _get(api, "/api/v1/configmaps")
        except (urllib.error.URLError, ConnectionError, OSError):
            refused += 1
            break
    assert refused, "ten back-to-back LISTs never killed the server"
    assert not _reachable(api)
    poll(lambda: _reachable(api), 20, "the API server to restart")
    assert _metric(api, "lab_apiserver_oom_kills") >= 1
    assert _metric(api, "process_start_time_seconds") > started
    status, body = _get(api, "/api/v1/namespaces/default/configmaps?limit=500")
    assert status == 200 and len(body["items"]) == 300


def test_after_a_restart_reflector_lists_and_watches_get_429_while_quorum_reads_are_served(
    small_heap: RunningApiServer,
) -> None:
    """While the watch cache re-initialises, resourceVersion=0 LISTs and WATCHes get 429; quorum LISTs and GETs work."""
    api = small_heap
    for _ in range(10):
        try:
            _get(api, "/api/v1/configmaps")
        except (urllib.error.URLError, ConnectionError, OSError):
            break
    poll(lambda: _reachable(api), 20, "the API server to restart")
    status, body = _get(api, "/api/v1/namespaces/default/configmaps?resourceVersion=0")
    assert status == 429 and "initializing" in body["message"], body
    assert _get(api, "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1")[0] == 429
    assert _get(api, "/api/v1/namespaces/default/configmaps/cm-0001")[0] == 200
    assert _get(api, "/api/v1/namespaces/default/configmaps?labelSelector=a%3Db")[0] == 200
    poll(lambda: _get(api, "/api/v1/namespaces/default/configmaps?resourceVersion=0&limit=1")[0] == 200, 20,
         "the watch cache to finish initialising")


def test_without_a_limit_the_heap_is_measured_but_nothing_is_killed(tmp_path: Path) -> None:
    """With no --memory-limit-mb the heap gauge moves under LISTs and the server is never killed."""
    with running_apiserver(tmp_path) as api:
        for _ in range(20):
            assert _get(api, "/api/v1/namespaces")[0] == 200
        assert _metric(api, "lab_apiserver_heap_bytes") > 0
        assert _metric(api, "lab_apiserver_memory_limit_bytes") == 0
        assert _metric(api, "lab_apiserver_oom_kills") == 0
