"""``gameday janitor``: the dead-man switch's loop, run in the cluster (agents/manifests/30-janitor.yaml) or beside it.

Every ``--interval`` seconds one sweep of the ledger namespace (``tasks.janitor``): when no live run holds the
campaign Lease (none renewed it within its duration plus ``--grace``), every open ledger entry is rolled back newest
first, an Event is recorded on the Lease and the Lease is released; a live campaign is never touched. An API error
ends only that sweep (logged; the next one tries again). SIGTERM or SIGINT ends the loop after the sweep under way.
``--metrics-port`` serves the janitor's Prometheus metrics (``gameday_janitor_*``); ``--once`` sweeps once (exit 1
when a rollback failed), for a CronJob or a shell.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from flows.cli_common import out, user_errors


def in_cluster(timeout: float) -> Any:
    """The cluster this process runs in, as its pod's service account (the official client's in-cluster config)."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    from tasks.cluster import Cluster
    from tasks.errors import TargetError

    configuration = k8s.Configuration()
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException as e:
        raise TargetError(f"--in-cluster: not running in a pod (no KUBERNETES_SERVICE_HOST or service-account "
                          f"token): {e}") from e
    return Cluster(k8s.ApiClient(configuration), user="in-cluster", timeout=timeout)


def run_janitor(janitor: Any, interval_s: float, stop: threading.Event, log: Callable[[str], None],
                once: bool = False) -> int:
    """Sweep every ``interval_s`` until ``stop`` is set (or once); the number of rollbacks that failed last."""
    failed = 0
    while True:
        try:
            sweep = janitor.sweep()
            failed = len(sweep.failed)
            if sweep.claimed or sweep.failed:
                log(f"janitor: sweep at {sweep.at:%H:%M:%S}Z reverted {len(sweep.reverted)} entr"
                    f"{'y' if len(sweep.reverted) == 1 else 'ies'} ({failed} failed), Lease released: {sweep.released}")
        except Exception as e:  # noqa: BLE001 - the API may be down (it is often why the runner died): try again
            log(f"janitor: sweep failed at {datetime.now(UTC):%H:%M:%S}Z: {type(e).__name__}: {e}")
        if once or stop.wait(interval_s):
            return failed


@user_errors
def janitor(
    target: Annotated[str, typer.Option(help="'lab' or a kubeconfig context (ignored with --in-cluster)")] = "lab",
    in_cluster_: Annotated[bool, typer.Option(
        "--in-cluster", help="use the pod's service account (as the janitor Deployment runs)")] = False,
    namespace: Annotated[str | None, typer.Option(help="the ledger namespace (default: GAMEDAY_LEDGER_NAMESPACE)")]
    = None,
    grace: Annotated[float, typer.Option(
        min=0, help="seconds a campaign Lease must be out of date, beyond its own duration, before its run counts "
        "as dead")] = 0.0,
    interval: Annotated[float, typer.Option(min=0.1, help="seconds between sweeps")] = 5.0,
    metrics_port: Annotated[int, typer.Option(min=0, max=65535, help="serve /metrics here (0: not at all)")] = 0,
    metrics_address: Annotated[str, typer.Option(help="the address /metrics listens on")] = "0.0.0.0",
    once: Annotated[bool, typer.Option(help="sweep once and exit (1 if a rollback failed)")] = False,
) -> None:
    """Dead-man switch: revert the open faults of campaigns whose runner died (its campaign Lease ran out), on a
    loop; a live campaign is never touched."""
    from prometheus_client import start_http_server

    from flows.reconcile import target_named
    from tasks.cluster import Cluster
    from tasks.janitor import Janitor
    from tasks.run.connect import fault_context_factory
    from tasks.settings import Settings

    settings = Settings()
    ns = namespace or settings.ledger_namespace

    def log(message: str) -> None:
        out.print(message, markup=False, highlight=False)

    cluster = (in_cluster(settings.request_timeout_s) if in_cluster_
               else Cluster.for_target(target_named(target), settings))
    keeper = Janitor(cluster, ns, grace, fault_context_factory(cluster, settings, log), log)
    if metrics_port:
        start_http_server(metrics_port, metrics_address, registry=keeper.metrics.registry)
    stop = threading.Event()
    if not once:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        log(f"janitor: watching {ns} as {keeper.identity} every {interval:g} s (grace {grace:g} s"
            + (f", metrics on :{metrics_port}" if metrics_port else "") + ")")
    try:
        failed = run_janitor(keeper, interval, stop, log, once)
    finally:
        cluster.close()
    if once and failed:
        raise typer.Exit(1)
