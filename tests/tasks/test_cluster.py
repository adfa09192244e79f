"""The cluster facade: error mapping, target resolution, identity."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from blueprints.campaign import BlastRadius, Target
from tasks.cluster import Cluster, map_api_error
from tasks.errors import Conflict, NotFound, TargetError, TemporaryError
from tasks.settings import Settings
from tests.conftest import poll
from tests.tasks.helpers import NODES, api_cluster


def _exc(status: int, headers: dict[str, str] | None = None) -> ApiException:
    e = ApiException(status=status, reason="x")
    e.headers = headers or {}
    return e


def test_api_errors_map_to_typed_errors() -> None:
    """404 → NotFound, 409 → Conflict, 429/5xx → TemporaryError with Retry-After, 403 → TargetError."""
    assert isinstance(map_api_error(_exc(404), "get"), NotFound)
    assert isinstance(map_api_error(_exc(409), "create"), Conflict)
    throttled = map_api_error(_exc(429, {"Retry-After": "3"}), "list")
    assert isinstance(throttled, TemporaryError) and throttled.delay == 3.0
    assert isinstance(map_api_error(_exc(503), "list"), TemporaryError)
    forbidden = map_api_error(_exc(403), "delete")
    assert isinstance(forbidden, TargetError) and not isinstance(forbidden, NotFound)


def test_lab_target_without_a_running_lab_says_how_to_start_it(tmp_path: Path) -> None:
    """Resolving the lab target with no endpoints.json raises TargetError naming `python -m lab up`."""
    target = Target(cluster="lab", namespaces=["default"], blast_radius=BlastRadius(max_nodes=1))
    with pytest.raises(TargetError, match="python -m lab up"):
        Cluster.for_target(target, Settings(state_dir=tmp_path))


def test_missing_kubeconfig_is_a_target_error(tmp_path: Path) -> None:
    """A kubeconfig that does not exist raises TargetError."""
    with pytest.raises(TargetError):
        Cluster.from_kubeconfig(tmp_path / "nope", "ctx")


def test_lab_target_resolves_the_runner_context(api: Any, tmp_path: Path) -> None:
    """From a lab endpoints.json, the facade picks the gameday-runner context and reads the lab's endpoints."""
    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    (lab_dir / "endpoints.json").write_text(json.dumps({"kubeconfig": str(api.kubeconfig), "dns": "127.0.0.1:5353"}))
    target = Target(cluster="lab", namespaces=["default"], blast_radius=BlastRadius(max_nodes=1))
    cluster = Cluster.for_target(target, Settings(state_dir=tmp_path, lab_state_dir=lab_dir))
    try:
        assert cluster.whoami() == "gameday-runner"
        assert cluster.lab is not None and cluster.lab.dns == "127.0.0.1:5353"
        assert cluster.connection().token == api.runner_token
        assert sorted(n.metadata.name for n in cluster.list_nodes()) == NODES
    finally:
        cluster.close()


def _nobody_listening(outage_retry_s: float = 0.0) -> Cluster:
    """A cluster facade pointed at a loopback port nothing listens on."""
    from kubernetes import client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = client.Configuration()
    cfg.host = f"http://127.0.0.1:{port}"
    cfg.retries = 0
    return Cluster(client.ApiClient(cfg), timeout=2.0, outage_retry_s=outage_retry_s)


def test_unreachable_server_is_temporary() -> None:
    """A server that refuses connections gives TemporaryError (worth retrying), not a crash."""
    cluster = _nobody_listening()
    try:
        with pytest.raises(TemporaryError):
            cluster.list_nodes()
    finally:
        cluster.close()


def test_not_found_and_conflict_through_the_api(api: Any) -> None:
    """Real 404 and 409 answers arrive as NotFound and Conflict; delete of a missing object returns False."""
    cluster = api_cluster(api, "lab-admin")
    try:
        with pytest.raises(NotFound):
            cluster.read_node("no-such-node")
        cluster.ensure_namespace("dup")
        assert cluster.ensure_namespace("dup") is False
        assert cluster.delete_configmap("dup", "never-existed") is False
    finally:
        cluster.close()


def test_a_never_reached_server_fails_at_once_even_with_outage_retries() -> None:
    """The outage retry only rides out a server that answered before: a wrong address still fails at once."""
    import time

    cluster = _nobody_listening(outage_retry_s=60.0)
    started = time.monotonic()
    try:
        with pytest.raises(TemporaryError):
            cluster.list_nodes()
        assert time.monotonic() - started < 30, "a never-reached server was retried as an outage"
    finally:
        cluster.close()


def test_calls_ride_out_an_api_server_kill_and_restart(tmp_path: Path) -> None:
    """Once reached, a call made while the API server is SIGKILLed (as the OOM killer does) waits for its supervisor
    to restart it; without the outage retry it fails at once."""
    import os
    import signal

    from lab.procs import pid_alive
    from lab.testing import running_api

    with running_api(tmp_path, restart_backoff_seconds=3) as api:
        status_file = Path(api.endpoints["supervisors"]["kube-apiserver"])
        patient = Cluster.from_kubeconfig(api.kubeconfig, "lab-admin", outage_retry_s=60.0)
        hasty = Cluster.from_kubeconfig(api.kubeconfig, "lab-admin")
        try:
            assert patient.call("list namespaces", patient.core.list_namespace).items
            assert hasty.call("list namespaces", hasty.core.list_namespace).items
            assert patient.reached and hasty.reached
            killed = json.loads(status_file.read_text())["pid"]
            os.kill(killed, signal.SIGKILL)
            poll(lambda: not pid_alive(killed), 10, "the killed API server gone")
            with pytest.raises(TemporaryError):
                hasty.call("list namespaces", hasty.core.list_namespace)
            names = [n.metadata.name for n in patient.call("list namespaces", patient.core.list_namespace).items]
            assert "default" in names
            restarted = json.loads(status_file.read_text())
            assert restarted["restarts"] == 1 and restarted["pid"] != killed
            assert restarted["history"][0]["reason"] == "signal 9"
        finally:
            patient.close()
            hasty.close()


def test_a_403_is_ridden_out_only_by_a_client_that_rides_out_outages(lab: Any) -> None:
    """A client with outage retries keeps retrying a 403 until the permission exists (a restarted API server denies
    until its RBAC caches sync); one without them fails at once with TargetError."""
    import threading

    from kubernetes import client as k8s

    sa = "gameday-late-binding"
    lab.kubectl("-n", "default", "create", "serviceaccount", sa, context="lab-admin")
    token = lab.kubectl("-n", "default", "create", "token", sa, context="lab-admin").stdout.strip()
    assert token

    def cluster(outage_retry_s: float) -> Cluster:
        configuration = k8s.Configuration()
        configuration.host = lab.endpoints["apiserver"]
        configuration.ssl_ca_cert = lab.endpoints["ca_file"]
        configuration.api_key = {"authorization": f"Bearer {token}"}
        return Cluster(k8s.ApiClient(configuration), user=sa, outage_retry_s=outage_retry_s)

    strict, patient = cluster(0.0), cluster(60.0)
    granted = threading.Event()

    def grant() -> None:
        lab.kubectl("-n", "default", "create", "rolebinding", sa, "--clusterrole", "view",
                    f"--serviceaccount=default:{sa}", context="lab-admin")
        granted.set()

    try:
        with pytest.raises(TargetError, match="403"):
            strict.list_pods(["default"], {})
        timer = threading.Timer(2.0, grant)
        timer.start()
        pods = patient.list_pods(["default"], {})
        timer.join()
        assert granted.is_set() and isinstance(pods, list)
    finally:
        strict.close()
        patient.close()
        lab.kubectl("-n", "default", "delete", "rolebinding,serviceaccount", sa, "--ignore-not-found",
                    context="lab-admin")
