"""The GPU health monitor's Prometheus metrics (names listed in ``lab.gpu.monitor``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


@dataclass
class MonitorMetrics:
    """The monitor's Prometheus metrics, in their own registry (durations in seconds)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.detected = Counter("gpu_monitor_xid_detected", "XID lines seen", ["node", "code"], registry=r)
        self.detection = Histogram(
            "gpu_monitor_detection_seconds", "Line time to detection (lab s)", buckets=BUCKETS, registry=r
        )
        self.remediation = Histogram(
            "gpu_monitor_remediation_seconds", "Line time to action done (lab s)", ["action"], buckets=BUCKETS,
            registry=r,
        )  # fmt: skip
        self.cordoned = Gauge(
            "gpu_monitor_nodes_cordoned", "Nodes cordoned by the monitor, still cordoned", registry=r
        )
        self.actions = Counter(
            "gpu_monitor_actions",
            "Actions taken, by the XID code that asked for them",
            ["node", "action", "code"],
            registry=r,
        )
        self.restarted = Counter("gpu_monitor_pods_restarted", "GPU pods deleted for restart", registry=r)
        self.evicted = Counter("gpu_monitor_pods_evicted", "Pods evicted by drains", registry=r)
        self.failures = Counter(
            "gpu_monitor_remediation_failures", "Actions that failed", ["action"], registry=r
        )
        self.last_detection = Gauge(
            "gpu_monitor_last_detection_seconds",
            "Detection time of the latest XID (lab s)",
            ["node"],
            registry=r,
        )
        self.last_remediation = Gauge(
            "gpu_monitor_last_remediation_seconds", "Line-to-done time of the latest action (lab s)", ["node", "action"],
            registry=r,
        )  # fmt: skip
        self.gpu_pods = Gauge("gpu_monitor_gpu_pods_running", "Running pods using GPUs", ["node"], registry=r)
        self.recovery = Gauge(
            "gpu_monitor_last_recovery_seconds",
            "XID line to node back and uncordoned (lab s)",
            ["node"],
            registry=r,
        )
        self.healthy = Gauge(
            "gpu_monitor_node_gpu_healthy", "1 when the node's GPUs are healthy", ["node"], registry=r
        )
