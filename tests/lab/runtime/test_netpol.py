"""Tests for the lab's source-agnostic NetworkPolicy ingress check."""

from __future__ import annotations

from typing import Any

from lab.runtime.netpol import admits, selects


def _pod(ns: str = "kube-system", **labels: str) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": "p", "labels": labels}}


def _policy(ns: str, selector: dict[str, Any], ingress: list[dict[str, Any]] | None,
            types: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": selector, "ingress": ingress or []}
    if types is not None:
        spec["policyTypes"] = types
    return {"metadata": {"namespace": ns, "name": "np"}, "spec": spec}


def test_unselected_pods_admit_everything() -> None:
    """A pod no policy selects is not isolated."""
    deny = _policy("kube-system", {"matchLabels": {"k8s-app": "kube-dns"}}, [])
    assert admits([deny], _pod(app="other"), 53, "dns", "UDP")
    assert admits([deny], _pod("default", **{"k8s-app": "kube-dns"}), 53, "dns", "UDP")


def test_deny_all_ingress_isolates_the_selected_pod() -> None:
    """A selecting Ingress policy with no rules blocks every port, as the coredns block fault expects."""
    deny = _policy("kube-system", {"matchLabels": {"k8s-app": "kube-dns"}}, [], ["Ingress"])
    assert not admits([deny], _pod(**{"k8s-app": "kube-dns"}), 1053, "dns", "UDP")
    assert not admits([deny], _pod(**{"k8s-app": "kube-dns"}), 1053, "dns-tcp", "TCP")


def test_rules_admit_by_port_protocol_and_range_but_never_with_a_from_clause() -> None:
    """Source-agnostic rules admit their ports; rules with peers admit nothing (the source is unknown)."""
    pod = _pod(app="x")
    by_port = _policy("kube-system", {}, [{"ports": [{"protocol": "UDP", "port": 53}]}])
    assert admits([by_port], pod, 53, "", "UDP") and not admits([by_port], pod, 53, "", "TCP")
    by_range = _policy("kube-system", {}, [{"ports": [{"protocol": "TCP", "port": 8000, "endPort": 8100}]}])
    assert admits([by_range], pod, 8080, "", "TCP") and not admits([by_range], pod, 9000, "", "TCP")
    peers = _policy("kube-system", {}, [{"from": [{"podSelector": {}}]}])
    assert not admits([peers], pod, 53, "", "UDP")


def test_egress_only_policies_do_not_isolate_ingress() -> None:
    """A policy of type Egress only leaves ingress open."""
    egress = _policy("kube-system", {}, [], ["Egress"])
    assert admits([egress], _pod(app="x"), 53, "", "UDP")


def test_match_expressions() -> None:
    """matchExpressions In/NotIn/Exists/DoesNotExist select like the API's label selectors."""
    labels = {"tier": "dns", "zone": "a"}
    assert selects({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["dns"]}]}, labels)
    assert not selects({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}, labels)
    assert selects({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, labels)
    assert not selects({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, labels)
