"""Verdicts that can fail, on the lab with its real Prometheus, through the `gameday` CLI: on the real control plane
(real CoreDNS pods on the lab's real nodes) the README's demo is refuted run after run and its serve-stale fix
confirmed, a metric no exporter has is inconclusive and a guardrail abort is never confirmed. The storm's verdict is in
tests/e2e/test_real_plane.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import E2E, poll

MISSING = """\
name: missing-metric
owner: tests
hypothesis:
  belief: the exporter that counts DNS SERVFAILs sees none
  expectations: ["max(servfails) <= 0 during fault", "mean(api_requests) > 0 during fault"]
target: {cluster: lab, namespaces: [kube-system], blast_radius: {max_pods: 0}}
observables:
  - {name: servfails, query: "sum(rate(gameday_no_such_servfails_total[5s])) or vector(0)"}
  - {name: api_requests, query: "sum(rate(apiserver_request_total[15s]))"}
baseline: 5s
stages: [{name: nothing, faults: [{kind: noop}], observe: 6s, recovery: 2s}]
"""

ABORTED = """\
name: guardrail-abort
owner: tests
hypothesis:
  belief: the API server keeps answering while CoreDNS is gone
  expectations: ["mean(api_requests) > 0 during fault"]
target: {cluster: lab, namespaces: [kube-system], blast_radius: {max_pods: 3}}
observables: [{name: api_requests, query: "sum(rate(apiserver_request_total[15s]))"}]
guardrails:
  - name: coredns-has-replicas
    every: 1s
    probe: {name: coredns-available, type: kubernetes, check: deployment-available, namespace: kube-system,
            object: coredns, tolerance: {range: [1, 100]}}
baseline: 5s
stages:
  - name: dns-down
    faults: [{kind: coredns-outage, mode: scale-to-zero, namespace: kube-system, deployment: coredns}]
    observe: 20s
    recovery: 5s
"""


def _results(e2e: E2E, campaign: str) -> tuple[Path, dict[str, Any]]:
    """The newest run of ``campaign`` and its results.json."""
    runs = sorted((e2e.state / "runs").glob(f"{campaign}-*"))
    assert runs, f"no run folder for {campaign}"
    return runs[-1], json.loads((runs[-1] / "report" / "results.json").read_text())


def _dns_ready(e2e: E2E) -> bool:
    """CoreDNS has its replicas back after a run."""
    from kubernetes import client

    d = client.AppsV1Api(e2e.lab.client()).read_namespaced_deployment("coredns", "kube-system")
    return bool(d.status.ready_replicas) and d.status.ready_replicas == d.spec.replicas


def _run(e2e: E2E, blueprint: str, campaign: str) -> tuple[str, dict[str, Any]]:
    """`gameday run BLUEPRINT --target lab --yes`: its output and results, once CoreDNS is whole again."""
    poll(lambda: _dns_ready(e2e), 120, "CoreDNS ready before the run")
    proc = e2e.gameday("run", blueprint, "--target", "lab", "--yes", timeout=600)
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text, text[-4000:]
    run_dir, results = _results(e2e, campaign)
    record = json.loads((run_dir / "record.json").read_text())
    assert all(f["rollback_ok"] for s in record["stages"] for f in s["faults"]), record["stages"]
    assert all(f["rollback_ok"] for f in record["setup"]), record["setup"]
    return text, results


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_demo_is_refuted_every_time_and_the_fix_is_confirmed(e2e_real: E2E) -> None:
    """The README's demo (a 60 s CoreDNS outage, twice the caches' TTL) is refuted in two runs in a row, printing
    the verdict and its reason; the same outage with serve_stale in NodeLocal DNSCache is confirmed."""
    for _ in range(2):
        text, results = _run(e2e_real, "coredns-outage", "coredns-outage")
        assert results["overall"]["verdict"] == "refuted", results["overall"]
        assert "verdict: ❌ refuted: " in text and "gateway_success_ratio" in text, text[-3000:]
        refuted = {e["result"]["text"] for e in results["expectations"] if e["result"]["verdict"] == "refuted"}
        assert "gateway_success_ratio >= 0.99 during fault" in refuted, refuted
        errors = next(o for o in results["observables"] if o["observable"] == "gateway_dns_error_ratio")
        fault = next(w for w in errors["windows"] if w["window"] == "fault")
        assert fault["summary"]["mean"] > 0.05, fault  # the evidence: requests failed on DNS
        assert results["warnings"] == []
    text, results = _run(e2e_real, "blueprints/library/coredns-outage-serve-stale.yaml", "coredns-outage-serve-stale")
    assert results["overall"]["verdict"] == "confirmed", (results["overall"], [
        (e["result"]["text"], e["result"]["reason"]) for e in results["expectations"]])
    assert "verdict: ✅ confirmed: " in text
    from kubernetes import client

    corefile = client.CoreV1Api(e2e_real.lab.client()).read_namespaced_config_map("node-local-dns", "kube-system").data["Corefile"]
    assert "serve_stale" not in corefile  # the setup was undone after the run


def test_metric_no_exporter_has_is_inconclusive_and_named(e2e_real: E2E, tmp_path: Path) -> None:
    """'or vector(0)' over a metric that no exporter has reads 0, yet the expectation is inconclusive, naming the
    metric, and the run warns about the fallback; the API-request expectation beside it is decided."""
    path = tmp_path / "missing-metric.yaml"
    path.write_text(MISSING)
    text, results = _run(e2e_real, str(path), "missing-metric")
    by_text = {e["result"]["text"]: e["result"] for e in results["expectations"]}
    servfails = by_text["max(servfails) <= 0 during fault"]
    assert servfails["verdict"] == "inconclusive", servfails
    assert "no data for gameday_no_such_servfails_total" in servfails["reason"]
    assert servfails["stages"][0]["missing"] == ["gameday_no_such_servfails_total"]
    assert by_text["mean(api_requests) > 0 during fault"]["verdict"] == "confirmed"
    assert results["overall"]["verdict"] == "inconclusive"
    assert "warning: hypothesis.expectations[0]: observable 'servfails' has a constant fallback" in text


def test_guardrail_abort_is_never_confirmed(e2e_real: E2E, tmp_path: Path) -> None:
    """A guardrail that fires aborts the stage; an expectation that held is not confirmed, and the verdict's reason
    starts with the guardrail, when it fired and what it saw."""
    path = tmp_path / "guardrail-abort.yaml"
    path.write_text(ABORTED)
    _, results = _run(e2e_real, str(path), "guardrail-abort")
    assert results["aborted"], results
    verdict = results["overall"]
    assert verdict["verdict"] == "inconclusive", verdict
    assert verdict["reason"].startswith("guardrail 'coredns-has-replicas' fired at "), verdict["reason"]
    assert verdict["guardrails"][0]["value"] is not None and not verdict["guardrails"][0]["refutes"]
