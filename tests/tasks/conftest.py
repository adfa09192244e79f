"""Fixtures for the tasks tests: a session lab (the real control plane), a small-seat real API server, Prometheus,
and contexts over them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tasks.cluster import Cluster
from tasks.faults.base import FaultContext
from tasks.settings import Settings
from tests.tasks.helpers import NODES


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A lab on the real control plane for the session: three real lab nodes (lab-node-0..2) running CoreDNS,
    NodeLocal DNSCache and the inference workload, no kwok node (root); torn down even on failure."""
    from lab.testing import running_control_plane
    from tests.conftest import require

    require(os.geteuid() == 0, "the real plane's own nodes (pod network, sandboxes) need root")
    with running_control_plane(tmp_path_factory.mktemp("lab"), nodes=0, real_nodes=3, node_lease_seconds=8,
                               node_monitor_grace_seconds=12, node_monitor_period_seconds=2) as handle:
        yield handle


@pytest.fixture(scope="session")
def lab_settings(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings pointing at the session lab, with a private state dir."""
    return Settings(state_dir=tmp_path_factory.mktemp("state"), lab_state_dir=lab.state_dir)


@pytest.fixture(scope="session")
def lab_cluster(lab: Any, lab_settings: Settings) -> Iterator[Cluster]:
    """The runner's view of the lab, resolved like a campaign target ``cluster: lab``."""
    from blueprints.campaign import BlastRadius, Target

    target = Target(cluster="lab", namespaces=["inference", "kube-system"], blast_radius=BlastRadius(max_nodes=3))
    cluster = Cluster.for_target(target, lab_settings)
    yield cluster
    cluster.close()


@pytest.fixture(scope="session")
def lab_admin(lab: Any) -> Iterator[Cluster]:
    """An admin facade over the lab, for arranging and inspecting state."""
    cluster = Cluster.from_kubeconfig(lab.kubeconfig, "lab-admin")
    yield cluster
    cluster.close()


@pytest.fixture
def lab_ctx(lab_cluster: Cluster, lab_settings: Settings) -> FaultContext:
    """A fault context over the lab (no blast radius)."""
    return FaultContext(cluster=lab_cluster, run_id="t", settings=lab_settings, log=lambda m: None)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Only the real etcd and kube-apiserver with 24 APF seats and a 2 s queue wait (so storms get 429s), the Node
    objects NODES (labelled role=cpu) and the lab's telemetry identity (lab/control/addons/telemetry.yaml)."""
    from lab.control.plane import ADDONS
    from lab.testing import running_api

    # about the fewest seats with which global-default and workload-low keep one of their own (APF's lower limit) even
    # beside break-glass's 200 shares: with fewer, a level's first request after a quiet spell can wait up to 10 s
    # for APF's next re-allocation of seats
    with running_api(tmp_path_factory.mktemp("api"), nodes=NODES, max_requests_inflight=16,
                     max_mutating_requests_inflight=8, request_timeout_seconds=8) as handle:
        applied = handle.kubectl("apply", "-f", str(ADDONS / "telemetry.yaml"), context="lab-admin")
        assert applied.returncode == 0, applied.stderr
        admin = Cluster.from_kubeconfig(handle.kubeconfig, "lab-admin")
        try:
            for name in NODES:
                admin.call("label node", admin.core.patch_node, name, {"metadata": {"labels": {"role": "cpu"}}})
        finally:
            admin.close()
        yield handle


@pytest.fixture(scope="session")
def exporter() -> Iterator[str]:
    """A tiny real exporter (prometheus_client) serving gameday_test_value{pod="a"}=42 and {pod="b"}=7."""
    from prometheus_client import CollectorRegistry, Gauge, start_http_server

    registry = CollectorRegistry()
    gauge = Gauge("gameday_test_value", "a test gauge", ["pod"], registry=registry)
    gauge.labels("a").set(42)
    gauge.labels("b").set(7)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def prometheus(exporter: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's Prometheus scraping the exporter every second; yields its URL once it has data."""
    import shutil
    import socket
    import subprocess

    import httpx

    from tests.conftest import require

    binary = shutil.which("prometheus")
    require(binary is not None, "needs Prometheus: apt-get install -y prometheus")
    assert binary is not None
    tmp = tmp_path_factory.mktemp("prom")
    (tmp / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs: [{{job_name: test, static_configs: [{{targets: ['{exporter}']}}]}}]\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=(tmp / "prometheus.log").open("wb"))
    url = f"http://127.0.0.1:{port}"

    def has_data() -> bool:
        try:
            r = httpx.get(f"{url}/api/v1/query", params={"query": "gameday_test_value"}, timeout=1)
            return r.is_success and len(r.json()["data"]["result"]) == 2
        except (httpx.HTTPError, ValueError):
            return False

    try:
        from tests.tasks.helpers import poll

        poll(has_data, timeout=30, interval=0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
