"""Prometheus metrics of what the agent holds (served at ``/metrics``).

``gameday_agent_active_faults{kind}``, ``gameday_agent_injections_total{kind,result}``,
``gameday_agent_reverts_total{kind,reason}`` (reason: rollback | lease-expired | restart | shutdown),
``gameday_agent_lease_seconds_remaining{fault_id}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from agents.state import StoredFault

disable_created_metrics()  # type: ignore[no-untyped-call]
KINDS = ("gpu-xid", "gpu-degrade", "nccl-partition")


class _Held(Collector):
    def __init__(self, faults: Callable[[], list[StoredFault]]) -> None:
        self._faults = faults

    def collect(self) -> Iterator[GaugeMetricFamily]:
        faults = self._faults()
        active = GaugeMetricFamily("gameday_agent_active_faults", "Faults the agent holds now", labels=["kind"])
        for kind in KINDS:
            active.add_metric([kind], sum(1 for f in faults if f.params.kind == kind))
        yield active
        lease = GaugeMetricFamily("gameday_agent_lease_seconds_remaining", "Seconds until a fault's lease expires",
                                  labels=["fault_id"])
        now = time.time()
        for f in faults:
            lease.add_metric([f.fault_id], max(0.0, f.expires_at - now))
        yield lease


class Metrics:
    """The agent's registry and counters."""

    def __init__(self, faults: Callable[[], list[StoredFault]]) -> None:
        self.registry = CollectorRegistry()
        self.injections = Counter("gameday_agent_injections", "Inject requests by outcome", ["kind", "result"],
                                  registry=self.registry)
        self.reverts = Counter("gameday_agent_reverts", "Faults reverted, by why", ["kind", "reason"],
                               registry=self.registry)
        self.registry.register(_Held(faults))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
