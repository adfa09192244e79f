"""One campaign per target: a Prefect global concurrency limit plus the cluster Lease, kept alive by a heartbeat.

The Prefect limit ``gameday-target-<target>`` (limit 1, created on first use) refuses a second run within
``SLOT_TIMEOUT_S`` seconds; its slot is held under a Prefect lease that lapses ``SLOT_LEASE_S`` seconds after
the holder dies. The coordination.k8s.io Lease in the cluster (``tasks/lease.py``) names the holder, guards
runs that do not go through this Prefect server, and is renewed by a heartbeat so a dead run's lease goes
stale within ``HEARTBEAT_TTL``. A refused run raises :class:`CampaignLocked` naming the holder. A slot taken while
the Lease says nobody holds the target (a dead run's slot that an ephemeral server never expires) is freed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from tasks.errors import CampaignLocked
from tasks.lease import HEARTBEAT_TTL, LeaseKeeper, lease_holder

log = logging.getLogger(__name__)
LIMIT_PREFIX = "gameday-target-"
SLOT_TIMEOUT_S = 5.0
SLOT_LEASE_S = 60.0


def limit_name(target: str) -> str:
    """The Prefect global concurrency limit guarding one target."""
    return LIMIT_PREFIX + (re.sub(r"[^a-z0-9-]+", "-", target.lower()).strip("-") or "default")


def ensure_limit(name: str) -> None:
    """Create the limit (1 slot) if the Prefect server does not have it yet (a lost race is fine)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        try:
            client.upsert_global_concurrency_limit_by_name(name, 1)
        except Exception:  # noqa: BLE001 - created by a concurrent run; strict acquisition below checks it
            client.read_global_concurrency_limit_by_name(name)


def release_limit(target: str) -> bool:
    """Delete the target's Prefect limit (freeing a dead run's slot now; the next run recreates it)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.delete_global_concurrency_limit_by_name(limit_name(target))
        except ObjectNotFound:
            return False
    return True


def _refused(cluster: Any, target: str, name: str, namespace: str) -> CampaignLocked:
    try:
        holder, stale = lease_holder(cluster, namespace)
    except Exception:  # noqa: BLE001 - the message still says which limit is taken
        holder, stale = None, False
    who = f"campaign {holder!r}" if holder else "another campaign"
    note = (
        " (its lease is stale: it may have died; its slot frees within a minute)" if holder and stale else ""
    )
    return CampaignLocked(
        f"target {target!r} is busy: {who} holds it{note} (Prefect concurrency limit {name!r}); "
        "wait for it to finish, or cancel it"
    )


@contextmanager
def target_lock(
    cluster: Any,
    target: str,
    holder: str,
    namespace: str = "gameday",
    on_lost: Callable[[str], None] | None = None,
    prefect_limit: bool = True,
    ttl_s: float = HEARTBEAT_TTL,
) -> Iterator[LeaseKeeper]:
    """Hold the target for one run: Prefect slot (if ``prefect_limit``) then cluster Lease with a heartbeat."""
    from prefect.concurrency.sync import concurrency

    name = limit_name(target)
    with ExitStack() as stack:
        if prefect_limit:
            ensure_limit(name)

            def slot() -> None:
                stack.enter_context(
                    concurrency(name, occupy=1, timeout_seconds=SLOT_TIMEOUT_S, strict=True,
                                lease_duration=SLOT_LEASE_S)
                )

            try:
                slot()
            except TimeoutError:
                if not _holder_dead(cluster, namespace):
                    raise _refused(cluster, target, name, namespace) from None
                # The slot outlived its run (an ephemeral server, SIGKILLed with its runner, never expires it): the
                # cluster Lease, which every live run renews, says nobody holds the target. Free it and try again;
                # two runners racing here still meet at the Lease below, which only one of them gets.
                log.warning("Prefect limit %r is taken but no live run holds the target's lease: freeing it", name)
                release_limit(target)
                ensure_limit(name)
                try:
                    slot()
                except TimeoutError:
                    raise _refused(cluster, target, name, namespace) from None
        keeper = LeaseKeeper(cluster, holder, namespace, ttl=ttl_s, on_lost=on_lost).acquire()
        stack.callback(_release, keeper)
        yield keeper


def _holder_dead(cluster: Any, namespace: str) -> bool:
    """Whether the cluster Lease says no live run holds the target (none, or stale)."""
    try:
        holder, stale = lease_holder(cluster, namespace)
    except Exception:  # noqa: BLE001 - unknown: assume alive, refuse
        return False
    return holder is None or stale


def _release(keeper: LeaseKeeper) -> None:
    try:
        keeper.release()
    except Exception:  # noqa: BLE001 - it goes stale on its own; reconcile --release-lease removes it
        pass
