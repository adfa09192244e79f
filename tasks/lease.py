"""The campaign lock: one campaign per target at a time, held as a coordination.k8s.io Lease.

The Lease ``gameday-campaign`` in the ledger namespace names its holder. Acquiring a Lease held by someone
else raises :class:`CampaignLocked` naming the holder, unless the lease is stale (not renewed within its
duration), in which case it is taken over. Acquiring again as the same holder renews it. Writes use the
Lease's resourceVersion, so two runners racing for it cannot both win. A :class:`LeaseKeeper` renews the
lease from a heartbeat thread while a run is alive, so the lease can be short (``HEARTBEAT_TTL``) and a
dead run's lease goes stale within a minute or two.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tasks.cluster_ops import Manifest
from tasks.errors import CampaignLocked, Conflict, NotFound
from tasks.faults.selection import MANAGED_BY

LEASE_NAME = "gameday-campaign"
HEARTBEAT_TTL = 90.0
"""Seconds a campaign lease lives without renewal."""
KEEPER_BEAT_S = 5.0
"""The most seconds between a keeper's renewals (a third of the TTL when that is shorter): a run notices within this
that ``gameday stop`` took its target."""
STOP_PREFIX = "gameday-stop"
"""Holder names of the kill switch's lease (``gameday stop``)."""


def _micro(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _body(namespace: str, holder: str, ttl_s: int, acquired: datetime, renewed: datetime,
          resource_version: str | None = None) -> Manifest:
    meta = {"name": LEASE_NAME, "namespace": namespace, "labels": dict(MANAGED_BY),
            **({"resourceVersion": resource_version} if resource_version else {})}
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": ttl_s,
                     "acquireTime": _micro(acquired), "renewTime": _micro(renewed)}}


def _seconds(ttl: timedelta | float) -> int:
    return max(1, int(ttl.total_seconds() if isinstance(ttl, timedelta) else ttl))


def lease_holder(cluster: Any, namespace: str = "gameday") -> tuple[str | None, bool]:
    """(holder, stale) of the campaign lease; (None, True) when there is none."""
    try:
        lease = cluster.read_lease(namespace, LEASE_NAME)
    except NotFound:
        return None, True
    return _holder_of(lease)


def _holder_of(lease: Any) -> tuple[str | None, bool]:
    holder = lease.spec.holder_identity if lease.spec else None
    deadline = lease_deadline(lease)
    return holder, deadline is None or datetime.now(UTC) > deadline


def _read_or_create(cluster: Any, holder: str, ttl_s: int, namespace: str, now: datetime) -> Any | None:
    """The campaign Lease as it is, or None when there was none and it was just created for ``holder``."""
    try:
        return cluster.read_lease(namespace, LEASE_NAME)
    except NotFound:
        cluster.ensure_namespace(namespace, dict(MANAGED_BY))
        try:
            cluster.create_lease(namespace, _body(namespace, holder, ttl_s, now, now))
            return None
        except Conflict:  # another runner created it between the read and the create
            return cluster.read_lease(namespace, LEASE_NAME)


def acquire_target_lease(cluster: Any, holder: str, ttl: timedelta | float, namespace: str = "gameday") -> None:
    """Take (or renew) the campaign lease for ``holder``; CampaignLocked if another live holder has it.

    A Conflict on the write is read again rather than taken for a rival: the answer to the holder's own last write
    may have been lost (an API server OOM-killed after it committed; stop 28's CI: a replay's runner stopped itself
    mid-incident, "another runner took lease at the same moment", with no other runner there), and a renewal that
    reads the lease as still its own simply writes again."""
    ttl_s = _seconds(ttl)
    for _ in range(5):
        now = datetime.now(UTC)
        lease = _read_or_create(cluster, holder, ttl_s, namespace, now)
        if lease is None:
            return
        current, stale = _holder_of(lease)
        if current and current != holder and not stale:
            raise CampaignLocked(f"target is locked by campaign {current!r} (lease {namespace}/{LEASE_NAME}); "
                                 "wait for it, or run reconcile if it died")
        acquired = lease.spec.acquire_time if (lease.spec and current == holder and lease.spec.acquire_time) else now
        try:
            cluster.replace_lease(namespace, LEASE_NAME,
                                  _body(namespace, holder, ttl_s, acquired, now, lease.metadata.resource_version))
        except Conflict:
            continue  # written in between (by its own lost write, or a rival): read it again
        return
    raise CampaignLocked(f"could not write lease {namespace}/{LEASE_NAME}: it changed under every attempt")


def take_target_lease(cluster: Any, holder: str, ttl: timedelta | float, namespace: str = "gameday") -> str | None:
    """Take the campaign lease for ``holder`` whoever holds it (the kill switch); the live holder it was taken from.

    That holder's keeper finds the lease taken at its next renewal and its run stops (``on_lost``)."""
    ttl_s = _seconds(ttl)
    for _ in range(5):
        now = datetime.now(UTC)
        lease = _read_or_create(cluster, holder, ttl_s, namespace, now)
        if lease is None:
            return None
        current, stale = _holder_of(lease)
        try:
            cluster.replace_lease(namespace, LEASE_NAME,
                                  _body(namespace, holder, ttl_s, now, now, lease.metadata.resource_version))
        except Conflict:
            continue  # renewed by its holder between the read and the write: read it again
        return None if stale or current == holder else current
    raise CampaignLocked(f"could not take lease {namespace}/{LEASE_NAME}: it changed under every attempt")


def lease_deadline(lease: Any) -> datetime | None:
    """When a Lease runs out (its last renewal plus its duration); None when it was never renewed or acquired."""
    spec = lease.spec
    renewed: datetime | None = (spec.renew_time or spec.acquire_time) if spec else None
    if renewed is None:
        return None
    if renewed.tzinfo is None:
        renewed = renewed.replace(tzinfo=UTC)
    return renewed + timedelta(seconds=int(spec.lease_duration_seconds or 0))


def claim_expired_lease(cluster: Any, claimant: str, ttl: timedelta | float, namespace: str = "gameday",
                        grace_s: float = 0.0) -> tuple[bool, str | None]:
    """Take the campaign lease for ``claimant`` only where no live run holds it: (taken, the holder it was taken from).

    Taken when there is none, when it has no holder, or when it ran out more than ``grace_s`` seconds ago; never from
    a holder still within its duration plus the grace. The write carries the resourceVersion read, so a run that
    renews or takes the lease in between wins and nothing is taken (``(False, holder)``)."""
    now = datetime.now(UTC)
    ttl_s = _seconds(ttl)
    lease = _read_or_create(cluster, claimant, ttl_s, namespace, now)
    if lease is None:
        return True, None
    holder = lease.spec.holder_identity if lease.spec else None
    deadline = lease_deadline(lease)
    if holder and holder != claimant and deadline is not None and now <= deadline + timedelta(seconds=grace_s):
        return False, holder
    try:
        cluster.replace_lease(namespace, LEASE_NAME,
                              _body(namespace, claimant, ttl_s, now, now, lease.metadata.resource_version))
    except Conflict:
        return False, holder
    return True, holder


def release_target_lease(cluster: Any, holder: str, namespace: str = "gameday") -> bool:
    """Delete the campaign lease if ``holder`` holds it; True when released."""
    current, _ = lease_holder(cluster, namespace)
    if current != holder:
        return False
    return bool(cluster.delete_lease(namespace, LEASE_NAME))


class LeaseKeeper:
    """A heartbeat thread renewing ``holder``'s campaign lease every ``ttl / 3`` seconds (at most ``KEEPER_BEAT_S``)
    until stopped.

    A renewal that finds the lease taken by someone else calls ``on_lost`` once and stops; other errors
    (API briefly unreachable) are retried at the next beat, and the lease only goes stale if they last a TTL.
    """

    def __init__(self, cluster: Any, holder: str, namespace: str = "gameday", ttl: float = HEARTBEAT_TTL,
                 on_lost: Callable[[str], None] | None = None) -> None:
        self.cluster, self.holder, self.namespace, self.ttl = cluster, holder, namespace, ttl
        self.on_lost = on_lost
        self.renewals = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> LeaseKeeper:
        """Take the lease (CampaignLocked naming the holder if another live run has it) and start beating."""
        acquire_target_lease(self.cluster, self.holder, self.ttl, self.namespace)
        self._thread = threading.Thread(target=self._beat, name="gameday-lease", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(max(min(self.ttl / 3, KEEPER_BEAT_S), 0.05)):
            try:
                acquire_target_lease(self.cluster, self.holder, self.ttl, self.namespace)
                self.renewals += 1
            except CampaignLocked as e:
                if self.on_lost is not None:
                    self.on_lost(str(e))
                return
            except Exception as e:  # noqa: BLE001 - transient: the next beat retries before the TTL runs out
                self.errors.append(f"{type(e).__name__}: {e}")

    def release(self) -> bool:
        """Stop beating and delete the lease if this holder still has it; True when released."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return release_target_lease(self.cluster, self.holder, self.namespace)
