"""CoreDNS metric families, registered once per process in prometheus_client's default REGISTRY.

Every series carries a ``pod`` label so several replicas can share one process; names and the
other labels follow CoreDNS (``server``, ``zone``, ``type``, ``rcode``, ``proto``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DURATION_BUCKETS = tuple(0.00025 * 2**i for i in range(16))

REQUESTS = Counter(
    "coredns_dns_requests_total",
    "Counter of DNS requests made per zone, protocol and family.",
    ["pod", "server", "zone", "proto", "family", "type"],
)
RESPONSES = Counter(
    "coredns_dns_responses_total",
    "Counter of response status codes.",
    ["pod", "server", "zone", "rcode"],
)
DURATION = Histogram(
    "coredns_dns_request_duration_seconds",
    "Histogram of the time (in seconds) each request took.",
    ["pod", "server", "zone", "type"],
    buckets=DURATION_BUCKETS,
)
CACHE_HITS = Counter("coredns_cache_hits_total", "The count of cache hits.", ["pod", "server", "type"])
CACHE_MISSES = Counter("coredns_cache_misses_total", "The count of cache misses.", ["pod", "server"])
CACHE_STALE = Counter(
    "coredns_cache_served_stale_total",
    "The number of requests served from stale cache entries.",
    ["pod", "server"],
)
CACHE_ENTRIES = Gauge(
    "coredns_cache_entries", "The number of elements in the cache.", ["pod", "server", "type"]
)
API_REACHABLE = Gauge(
    "coredns_kubernetes_api_reachable",
    "1 while the last request to the Kubernetes API succeeded (lab metric).",
    ["pod"],
)
RELOADS = Counter("coredns_reload_total", "Corefile reloads by outcome (lab metric).", ["pod", "outcome"])
UNKNOWN_PLUGINS = Counter(
    "coredns_corefile_unknown_plugins_total",
    "Unknown plugins seen (and ignored) in a loaded Corefile (lab metric).",
    ["pod", "plugin"],
)
FORWARD_REQUESTS = Counter(
    "coredns_forward_requests_total", "Counter of requests made per upstream.", ["pod", "to"]
)
FORWARD_RESPONSES = Counter(
    "coredns_forward_responses_total", "Counter of responses received per upstream.", ["pod", "to", "rcode"]
)
FORWARD_FAILURES = Counter(
    "coredns_forward_upstream_failures_total",
    "Tries at an upstream that got no answer, by reason: refused, timeout, malformed (lab metric).",
    ["pod", "to", "reason"],
)
