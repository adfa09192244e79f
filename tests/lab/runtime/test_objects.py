"""Tests for lab.runtime.objects (quantities, taints, selectors, hashes)."""

from __future__ import annotations

from lab.runtime.objects import (
    label_selector_match,
    parse_quantity,
    parse_time,
    pod_requests,
    template_hash,
    tolerates,
    untolerated,
)


def test_parse_quantity_units() -> None:
    """Milli-cores, binary and decimal suffixes and plain numbers parse to base units."""
    assert parse_quantity("500m") == 0.5
    assert parse_quantity("2Gi") == 2 * 2**30
    assert parse_quantity("1k") == 1000
    assert parse_quantity(8) == 8


def test_pod_requests_sums_containers_and_uses_limits_for_extended() -> None:
    """Requests add up over containers; an extended resource given only as a limit counts."""
    pod = {"spec": {"containers": [
        {"resources": {"requests": {"cpu": "250m"}, "limits": {"nvidia.com/gpu": 2}}},
        {"resources": {"requests": {"cpu": "750m", "memory": "1Gi"}}},
    ]}}
    assert pod_requests(pod) == {"cpu": 1.0, "nvidia.com/gpu": 2.0, "memory": 2**30}


def test_tolerations_follow_kubernetes_rules() -> None:
    """Exists without key tolerates all; effect and value must match otherwise."""
    taint = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
    assert tolerates([{"operator": "Exists"}], taint)
    assert tolerates([{"key": taint["key"], "operator": "Exists", "effect": "NoExecute"}], taint)
    assert tolerates([{"key": taint["key"], "operator": "Exists", "effect": "NoSchedule"}], taint) is None
    assert tolerates([{"key": "gpu", "value": "a"}], {"key": "gpu", "value": "b", "effect": "NoSchedule"}) is None
    assert untolerated([], [taint, {"key": "x", "effect": "PreferNoSchedule"}], ("NoExecute",)) == [taint]


def test_label_selector_expressions() -> None:
    """matchLabels and In/NotIn/Exists/DoesNotExist expressions all apply."""
    labels = {"app": "a", "tier": "web"}
    assert label_selector_match({"matchLabels": {"app": "a"}}, labels)
    assert label_selector_match({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}, labels)
    assert not label_selector_match({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, labels)
    assert not label_selector_match({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, labels)


def test_template_hash_is_stable_and_sensitive() -> None:
    """The same template hashes the same regardless of key order; a change changes it."""
    a = {"spec": {"containers": [{"image": "x", "name": "c"}]}}
    b = {"spec": {"containers": [{"name": "c", "image": "x"}]}}
    assert template_hash(a) == template_hash(b)
    assert template_hash(a) != template_hash({"spec": {"containers": [{"image": "y", "name": "c"}]}})


def test_parse_time_micro_and_plain() -> None:
    """MicroTime and Time strings parse to the same second."""
    assert parse_time("2024-01-01T00:00:00.500000Z") == parse_time("2024-01-01T00:00:00Z") + 0.5  # type: ignore[operator]
    assert parse_time(None) is None
