"""Prometheus metrics with the real API server's names, labels and histogram buckets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lab.apiserver.store import Store

# kube-apiserver's apiserver_request_duration_seconds buckets.
REQUEST_BUCKETS = (
    0.005,
    0.025,
    0.05,
    0.1,
    0.2,
    0.4,
    0.6,
    0.8,
    1.0,
    1.25,
    1.5,
    2.0,
    3.0,
    4.0,
    5.0,
    6.0,
    8.0,
    10.0,
    15.0,
    20.0,
    30.0,
    45.0,
    60.0,
)
# apiserver_flowcontrol_request_wait_duration_seconds buckets.
WAIT_BUCKETS = (0.0, 0.005, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0)


class _StorageCollector(Collector):
    """apiserver_storage_objects{resource}, read from the store at scrape time."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self):  # type: ignore[no-untyped-def]
        """Yield one gauge sample per resource."""
        family = GaugeMetricFamily(
            "apiserver_storage_objects",
            "Number of stored objects at the time of last check split by kind.",
            labels=["resource"],
        )
        for table in self.store.tables.values():
            family.add_metric([table.resource.key], table.count)
        yield family


class Metrics:
    """All metrics of one server, on their own registry."""

    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        reg = self.registry
        self.requests = Counter(
            "apiserver_request_total",
            "Counter of apiserver requests broken out for each verb, resource and HTTP response code.",
            ["verb", "resource", "code"],
            registry=reg,
        )
        self.duration = Histogram(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb and resource.",
            ["verb", "resource"],
            buckets=REQUEST_BUCKETS,
            registry=reg,
        )
        self.inflight = Gauge(
            "apiserver_current_inflight_requests",
            "Maximal number of currently used inflight request limit of "
            "this apiserver per request kind in last second.",
            ["request_kind"],
            registry=reg,
        )
        self.rejected = Counter(
            "apiserver_flowcontrol_rejected_requests_total",
            "Number of requests rejected by API Priority and Fairness subsystem",
            ["priority_level", "flow_schema", "reason"],
            registry=reg,
        )
        self.inqueue = Gauge(
            "apiserver_flowcontrol_current_inqueue_requests",
            "Number of requests currently pending in queues of the API Priority and Fairness subsystem",
            ["priority_level"],
            registry=reg,
        )
        self.executing = Gauge(
            "apiserver_flowcontrol_current_executing_requests",
            "Number of requests in initial (for a WATCH) or "
            "any (for a non-WATCH) execution stage in the API Priority and Fairness subsystem",
            ["priority_level"],
            registry=reg,
        )
        self.executing_seats = Gauge(
            "apiserver_flowcontrol_current_executing_seats",
            "Concurrency (number of seats) occupied by the "
            "currently executing requests in the API Priority and Fairness subsystem",
            ["priority_level"],
            registry=reg,
        )
        self.seat_limit = Gauge(
            "apiserver_flowcontrol_nominal_limit_seats",
            "Nominal number of execution seats configured for each priority level",
            ["priority_level"],
            registry=reg,
        )
        self.wait = Histogram(
            "apiserver_flowcontrol_request_wait_duration_seconds",
            "Length of time a request spent waiting in its queue",
            ["priority_level", "flow_schema", "execute"],
            buckets=WAIT_BUCKETS,
            registry=reg,
        )
        self.dispatched = Counter(
            "apiserver_flowcontrol_dispatched_requests_total",
            "Number of requests executed by API Priority and Fairness subsystem",
            ["priority_level", "flow_schema"],
            registry=reg,
        )
        reg.register(_StorageCollector(store))

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
