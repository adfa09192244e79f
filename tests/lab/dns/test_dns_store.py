"""Tests for lab.dns.store: conversion of Service/Endpoints JSON into records."""

from __future__ import annotations

from lab.dns.store import endpoints_from_json, service_from_json


def test_headless_and_external_services() -> None:
    """`clusterIP: None` is headless; ExternalName is not headless and keeps its target."""
    headless = service_from_json(
        {"metadata": {"name": "m", "namespace": "ns"}, "spec": {"clusterIP": "None"}}
    )
    external = service_from_json(
        {
            "metadata": {"name": "e", "namespace": "ns"},
            "spec": {"type": "ExternalName", "externalName": "x.org"},
        }
    )
    normal = service_from_json(
        {"metadata": {"name": "n", "namespace": "ns"}, "spec": {"clusterIP": "10.0.0.1"}}
    )
    assert headless.headless and not external.headless and not normal.headless
    assert external.external_name == "x.org" and normal.cluster_ip == "10.0.0.1"


def test_endpoints_flatten_subsets() -> None:
    """Ready and not-ready addresses of all subsets are flattened; ports are de-duplicated."""
    eps = endpoints_from_json(
        {
            "metadata": {"name": "m", "namespace": "ns"},
            "subsets": [
                {
                    "addresses": [{"ip": "10.1.0.1", "hostname": "m-0"}],
                    "notReadyAddresses": [{"ip": "10.1.0.9"}],
                    "ports": [{"name": "http", "port": 80}],
                },
                {"addresses": [{"ip": "10.1.0.2"}], "ports": [{"name": "http", "port": 80}]},
            ],
        }
    )
    assert [a.ip for a in eps.ready] == ["10.1.0.1", "10.1.0.2"] and eps.ready[0].hostname == "m-0"
    assert [a.ip for a in eps.not_ready] == ["10.1.0.9"] and len(eps.ports) == 1


def test_endpoints_without_subsets() -> None:
    """An Endpoints object with no subsets has no addresses."""
    eps = endpoints_from_json({"metadata": {"name": "m", "namespace": "ns"}})
    assert eps.ready == () and eps.ports == ()
