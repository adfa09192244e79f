"""The dead-man switch: a dead campaign's open faults are reverted from the cluster's own ledger, with no runner.

A run writes each injection into the in-cluster ledger (ConfigMaps ``gameday-ledger-<run>``) before applying it
and renews the campaign Lease while it lives (``tasks.lease``). One :meth:`Janitor.sweep` reads both:

- a Lease held by a live holder (within its duration plus ``grace_s``) means a campaign is running or a kill switch
  holds the target: nothing is touched, not even an older dead run's entries (their objects may be the live
  campaign's too); they are reverted once it ends;
- otherwise, when open entries are left or a dead holder still names itself in the Lease, the janitor claims the
  Lease (only if it is still as read: a run that renews or starts in between wins), rolls every open entry back
  newest first through the fault registry exactly as ``gameday reconcile`` does (``tasks.reconcile``), records a
  Kubernetes Event on the Lease per campaign reverted, and releases the Lease. A runner that was only cut off and
  comes back finds its Lease taken at its next renewal and stops.

What it did is also counted in the janitor's own Prometheus registry (``gameday_janitor_*``). Faults with no
in-cluster ledger entry (Chaos Toolkit actions, noop) and node-agent faults (which revert on their own lease, on the
node) are not its business.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import BaseModel, ConfigDict, Field

from tasks.faults.base import FaultContext
from tasks.faults.selection import MANAGED_BY
from tasks.lease import LEASE_NAME, STOP_PREFIX, claim_expired_lease, lease_deadline, release_target_lease
from tasks.reconcile import ReconcileResult, open_entries, reconcile

JANITOR_PREFIX = "gameday-janitor"
"""Holder names of the janitor's own, short claim on the campaign Lease while it reverts."""
CLAIM_TTL_S = 120.0
"""How long the janitor's claim lives without release (a janitor killed mid-sweep frees the target after this)."""
COMPONENT = "gameday-janitor"


class Sweep(BaseModel):
    """What one pass found and did."""

    model_config = ConfigDict(extra="forbid")

    at: datetime
    holder: str | None = Field(default=None, description="the Lease's holder when read")
    live: bool = Field(default=False, description="whether that holder was within its duration plus the grace")
    open_entries: int = 0
    claimed: bool = False
    reverted: list[ReconcileResult] = Field(default_factory=list)
    released: bool = False
    note: str = ""

    @property
    def failed(self) -> list[ReconcileResult]:
        """The entries whose rollback failed (they stay open; the next sweep tries again)."""
        return [r for r in self.reverted if r.outcome != "rolled-back"]


class JanitorMetrics:
    """The janitor's counters, in a registry of its own (served by ``gameday janitor --metrics-port``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.sweeps = Counter("gameday_janitor_sweeps", "Sweeps of the ledger and the campaign Lease, by result",
                              ["result"], registry=self.registry)
        self.reverts = Counter("gameday_janitor_reverts", "Ledger entries of dead campaigns rolled back, by kind "
                               "and outcome", ["kind", "outcome"], registry=self.registry)
        self.campaigns = Counter("gameday_janitor_campaigns_reverted", "Dead campaigns whose faults were reverted",
                                 registry=self.registry)
        self.open = Gauge("gameday_janitor_open_entries", "Open ledger entries at the last sweep",
                          registry=self.registry)
        self.last = Gauge("gameday_janitor_last_sweep_timestamp_seconds", "When the last sweep finished",
                          registry=self.registry)


class Janitor:
    """Sweeps one cluster's ledger namespace for dead campaigns and reverts what they left."""

    def __init__(self, cluster: Any, namespace: str = "gameday", grace_s: float = 0.0,
                 make_context: Callable[[str], FaultContext] | None = None, log: Callable[[str], None] = print,
                 state_dir: Path | None = None, metrics: JanitorMetrics | None = None,
                 identity: str | None = None) -> None:
        self.cluster, self.namespace, self.grace_s = cluster, namespace, grace_s
        self.make_context, self.log = make_context, log
        self.state_dir = state_dir or Path(tempfile.mkdtemp(prefix="gameday-janitor-"))
        self.metrics = metrics or JanitorMetrics()
        self.identity = identity or f"{JANITOR_PREFIX}-{socket.gethostname()}"[:63]

    def _lease(self) -> tuple[str | None, bool, Any]:
        """(holder, live, the Lease or None)."""
        from tasks.errors import NotFound

        try:
            lease = self.cluster.read_lease(self.namespace, LEASE_NAME)
        except NotFound:
            return None, False, None
        holder = lease.spec.holder_identity if lease.spec else None
        deadline = lease_deadline(lease)
        now = datetime.now(UTC)
        live = bool(holder) and deadline is not None and (now - deadline).total_seconds() <= self.grace_s
        return holder, live, lease

    def sweep(self) -> Sweep:
        """One pass: revert every open entry when no live run holds the target; a Sweep saying what happened."""
        try:
            result = self._sweep()
        except Exception:
            self.metrics.sweeps.labels("error").inc()
            raise
        self.metrics.sweeps.labels("ok").inc()
        self.metrics.open.set(len(result.failed) if result.claimed else result.open_entries)
        self.metrics.last.set(datetime.now(UTC).timestamp())
        return result

    def _sweep(self) -> Sweep:
        now = datetime.now(UTC)
        holder, live, lease = self._lease()
        found = open_entries(self.cluster, self.state_dir, self.namespace)
        result = Sweep(at=now, holder=holder, live=live, open_entries=len(found))
        if live:
            result.note = f"campaign {holder!r} holds the target: left alone"
            return result
        dead_holder = holder if holder and not holder.startswith((JANITOR_PREFIX, STOP_PREFIX)) else None
        if not found and not dead_holder:
            return result
        taken, previous = claim_expired_lease(self.cluster, self.identity, CLAIM_TTL_S, self.namespace, self.grace_s)
        if not taken:
            result.note = f"the Lease moved on ({previous!r} holds it): left alone"
            return result
        result.claimed = True
        try:
            runs: dict[str, list[ReconcileResult]] = {}
            for item in reconcile(self.cluster, self.state_dir, self.namespace, self.make_context, self.log):
                runs.setdefault(item.run_id, []).append(item)
                self.metrics.reverts.labels(item.kind, item.outcome).inc()
                result.reverted.append(item)
            for run_id, items in runs.items():
                self.metrics.campaigns.inc()
                self._event(run_id, items, lease if run_id == dead_holder else None)
            if dead_holder and dead_holder not in runs:
                self._event(dead_holder, [], lease)
        finally:
            result.released = release_target_lease(self.cluster, self.identity, self.namespace)
        return result

    def _event(self, run_id: str, items: list[ReconcileResult], lease: Any) -> None:
        """A Kubernetes Event on the campaign Lease saying which campaign was reverted and how each entry went."""
        failed = [r for r in items if r.outcome != "rolled-back"]
        deadline = lease_deadline(lease) if lease is not None else None
        since = f"its Lease ran out at {deadline:%H:%M:%S}Z" if deadline else "it no longer holds the Lease"
        done = ", ".join(f"{r.stage}/{r.fault_id} ({r.kind}) {r.outcome}" for r in items) or "nothing was open"
        message = f"campaign {run_id}: {since}; reverted newest first: {done}"
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"{JANITOR_PREFIX}-", "namespace": self.namespace,
                         "labels": {**MANAGED_BY, "gameday.dev/run-id": run_id[:63]}},
            "involvedObject": {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "name": LEASE_NAME,
                               "namespace": self.namespace},
            "reason": "RevertFailed" if failed else "CampaignReverted",
            "type": "Warning" if failed else "Normal",
            "message": message[:1024],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT, "reportingInstance": self.identity,
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        }
        self.log(f"janitor: {message}")
        try:
            self.cluster.create_event(self.namespace, body)
        except Exception as e:  # noqa: BLE001 - the revert is what counts; the log line above still says it
            self.log(f"janitor: could not record the event: {type(e).__name__}: {e}")
