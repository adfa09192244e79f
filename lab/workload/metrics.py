"""Workload metric families (default REGISTRY), each labelled with ``pod``."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LIST_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

MODEL_REQUESTS = Counter("model_server_requests_total", "Inference requests served.", ["pod"])
GATEWAY_REQUESTS = Counter(
    "gateway_requests_total", "Gateway requests by HTTP code and failure cause.", ["pod", "code", "cause"]
)
GATEWAY_DURATION = Histogram(
    "gateway_request_duration_seconds", "Gateway request latency.", ["pod"], buckets=LATENCY_BUCKETS
)
GATEWAY_DNS = Counter("gateway_dns_lookups_total", "Gateway DNS lookups by result.", ["pod", "result"])
LOADGEN_REQUESTS = Counter(
    "loadgen_requests_total", "Load generator requests by outcome.", ["pod", "outcome"]
)
LOADGEN_DURATION = Histogram(
    "loadgen_request_duration_seconds", "Load generator request latency.", ["pod"], buckets=LATENCY_BUCKETS
)
STORM_REQUESTS = Counter(
    "liststorm_requests_total", "List-storm LIST requests by HTTP code.", ["pod", "code"]
)
STORM_DURATION = Histogram(
    "liststorm_request_duration_seconds", "List-storm LIST latency.", ["pod"], buckets=LIST_BUCKETS
)
STORM_WATCHES = Counter("liststorm_watches_total", "List-storm watches opened and dropped.", ["pod", "code"])
