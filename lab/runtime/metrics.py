"""The runtime's own Prometheus metrics (in prometheus_client's default registry, beside the pods')."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LEASE_RENEWALS = Counter(
    "lab_node_lease_renewals_total", "Node lease renewal attempts by result (all nodes).", ["result"]
)
LEASE_MISSED = Counter(
    "lab_node_lease_renewals_missed_total", "Renewal intervals in which a node renewed no lease."
)
LEASE_LATENCY = Histogram(
    "lab_node_lease_renewal_duration_seconds",
    "Time from a renewal being due to the API accepting it (retries included).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40),
)
NODES_READY = Gauge("lab_nodes_ready", "Nodes whose Ready condition is True.")
NODES_TOTAL = Gauge("lab_nodes", "Nodes known to the runtime.")
NODES_PAUSED = Gauge("lab_nodes_paused", "Hosted nodes whose kubelet is paused or dead.")
PODS_BY_PHASE = Gauge("lab_pods", "Pods by phase.", ["phase"])
PODS_RUNNING_LOCAL = Gauge("lab_kubelet_running_pods", "Pod programs running in this runtime.")
SCHEDULING_LATENCY = Histogram(
    "lab_scheduler_scheduling_duration_seconds",
    "Time from a pod's creation to its binding.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SCHEDULING_ATTEMPTS = Counter("lab_scheduler_attempts_total", "Scheduling attempts by result.", ["result"])
LOOP_LAG = Histogram(
    "lab_runtime_event_loop_lag_seconds", "How late a 100 ms timer fires in the runtime's event loop.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVICTIONS = Counter("lab_node_lifecycle_evictions_total", "Pods deleted by taint-based eviction.")
PROXY_FORWARDED = Counter("lab_proxy_forwarded_total", "Connections/datagrams forwarded by the proxy.", ["protocol"])
PROXY_DROPPED = Counter("lab_proxy_dropped_total", "Datagrams dropped for lack of endpoints.", ["protocol"])
