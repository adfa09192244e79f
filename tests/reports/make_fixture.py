"""SYNTHETIC run fixtures for the report tests and benchmark: realistic records and frames, NOT real lab runs.

Until runs recorded from the real lab are saved under ``tests/reports/fixtures/<name>/`` (record.json +
frames.parquet), the tests build synthetic ones with this generator. Signals imitate a CoreDNS outage drill:
a DNS success ratio, per-pod API latency, per-replica inference throughput and GPU utilisation, with noise,
a fault effect and an exponential recovery after rollback. Scenarios and the verdict each should give:

- ``confirmed``: every expectation holds; ``refuted``: DNS collapses and latency explodes;
- ``unverified``: like confirmed, but the first stage's fault was not verified to have landed;
- ``aborted``: stage 2 aborted by a guardrail, one rollback failed; ``nodata``: DNS ratio never scraped.

Usage: ``python tests/reports/make_fixture.py OUT_DIR [SCENARIO ...]`` writes ``OUT_DIR/<scenario>/``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from blueprints.campaign import Campaign
from blueprints.record import (
    Approval,
    CampaignRecord,
    FaultOutcome,
    StageOutcome,
    TargetInfo,
    TimelineEvent,
    Window,
)

EXPECTED = {"confirmed": "confirmed", "refuted": "refuted", "unverified": "inconclusive",
            "aborted": "refuted", "nodata": "inconclusive"}
T0 = datetime(2026, 11, 20, 14, 0, 0, tzinfo=UTC)


def blueprint(observe_s: int, recovery_s: int, baseline_s: int, extra: int = 0) -> dict[str, Any]:
    """The synthetic campaign: two CoreDNS-outage stages and four expectations."""
    obs = [
        {"name": "dns_success_ratio", "query": "sum(rate(coredns_dns_responses_total{rcode=\"NOERROR\"}[30s])) / "
         "sum(rate(coredns_dns_responses_total[30s]))", "slo": [">=", 0.99], "description": "DNS answers that succeed"},
        {"name": "api_latency", "query": "histogram_quantile(0.99, sum by (pod, le) (rate(http_request_duration_"
         "seconds_bucket[30s])))", "unit": "s", "slo": ["<=", 1.0]},
        {"name": "inference_rps", "query": "sum by (pod) (rate(inference_requests_total[30s]))", "unit": "req/s"},
        {"name": "gpu_util", "query": "avg(DCGM_FI_DEV_GPU_UTIL) / 100", "unit": "ratio"},
    ] + [{"name": f"extra_{i:02d}", "query": f"avg(extra_metric_{i})"} for i in range(extra)]
    fault = {"kind": "coredns-outage", "mode": "scale-to-zero", "name": "coredns-down"}
    return {
        "name": "dns-outage-drill", "owner": "sre@example.test", "description": "Synthetic CoreDNS outage drill",
        "hypothesis": {"belief": "Inference keeps serving through a short CoreDNS outage and DNS recovers within 30 s",
                       "expectations": ["mean(dns_success_ratio) >= 0.5 during fault",
                                        "p99(api_latency) <= 3 * baseline during fault",
                                        "dns_success_ratio >= 0.99 within 30s after rollback",
                                        "inference_rps >= 50 during fault in stage scale-to-zero"]},
        "target": {"cluster": "lab", "namespaces": ["kube-system", "inference"], "blast_radius": {"max_pods": 4}},
        "observables": obs, "baseline": f"{baseline_s}s",
        "guardrails": [{"name": "dns-floor", "probe": {
            "name": "dns-floor", "type": "prometheus", "tolerance": {"range": [0.5, 1.0]},
            "query": "sum(rate(coredns_dns_responses_total{rcode=\"NOERROR\"}[30s])) / "
                     "sum(rate(coredns_dns_responses_total[30s]))"}}],
        "stages": [
            {"name": "scale-to-zero", "faults": [fault], "observe": f"{observe_s}s", "recovery": f"{recovery_s}s"},
            {"name": "corefile-servfail", "approval": "required", "observe": f"{observe_s}s",
             "recovery": f"{recovery_s}s",
             "faults": [{"kind": "coredns-outage", "mode": "corefile", "name": "servfail",
                         "corefile": {"zones": ["svc.cluster.local"], "action": "servfail", "every": 2}}]},
        ],
    }


def _signal(name: str, t: np.ndarray, faults: list[tuple[float, float]], scenario: str, rng: np.random.Generator,
            pod: int) -> np.ndarray:
    """One series' values at times ``t`` (s), given fault intervals (inject, rollback) in seconds."""
    effect = np.zeros_like(t)
    for inject, rollback in faults:
        on = (t >= inject) & (t < rollback)
        effect[on] = 1.0 - np.exp(-(t[on] - inject) / 2.0)
        after = t >= rollback
        effect[after] = np.maximum(effect[after], np.exp(-(t[after] - rollback) / 3.0))
    bad = scenario == "refuted"
    n = t.size
    if name == "dns_success_ratio":
        drop = 0.8 if bad else 0.15
        return np.clip(0.9995 + rng.normal(0, 0.0002, n) - drop * effect, 0, 1)
    if name == "api_latency":
        base = 0.12 * (1 + 0.1 * pod) * rng.lognormal(0, 0.08, n)
        return base * (1 + (4.0 if bad else 0.8) * effect)
    if name == "inference_rps":
        return 100 + rng.normal(0, 4, n) - (60 if bad else 20) * effect
    if name == "gpu_util":
        return np.clip(0.85 + rng.normal(0, 0.03, n) - 0.2 * effect, 0, 1)
    return 10 + np.sin(t / 60) + rng.normal(0, 0.5, n) + 3 * effect


def make_run(out: Path, scenario: str = "confirmed", *, baseline_s: int = 120, observe_s: int = 60,
             recovery_s: int = 60, extra: int = 0, seed: int = 1, start: datetime = T0,
             run_id: str | None = None) -> Path:
    """Write ``out/record.json`` and ``out/frames.parquet`` for one synthetic run; returns ``out``."""
    rng = np.random.default_rng(seed)
    bp = blueprint(observe_s, recovery_s, baseline_s, extra)
    campaign = Campaign.model_validate(bp)
    s = lambda sec: start + timedelta(seconds=sec)
    events = [TimelineEvent(at=s(0), kind="campaign-start"), TimelineEvent(at=s(5), kind="baseline-start")]
    windows = [Window(kind="baseline", start=s(5), end=s(5 + baseline_s))]
    events.append(TimelineEvent(at=s(5 + baseline_s), kind="baseline-end"))
    stages, fault_spans, cursor = [], [], 5 + baseline_s + 2
    for i, st in enumerate(campaign.stages):
        name, fid = st.name, campaign.fault_ids(st)[0]
        inject, observe = cursor + 1.0, float(observe_s)
        approval = Approval(decision="go", by="alice", at=s(cursor), comment="looks fine") if st.approval == "required" else None
        status, reason = "completed", ""
        if scenario == "aborted" and i == 1:
            observe, status = observe_s / 3, "aborted"
            reason = "guardrail dns-floor breached: dns_success_ratio 0.41 < 0.5"
        rollback = inject + observe + 0.5
        ok = not (scenario == "aborted" and i == 1)
        verified = not (scenario == "unverified" and i == 0)
        events += [TimelineEvent(at=s(cursor), kind="stage-start", stage=name)]
        if approval:
            events.append(TimelineEvent(at=s(cursor), kind="approval", stage=name, message="go by alice"))
        events += [TimelineEvent(at=s(cursor + 0.5), kind="ledger", stage=name, fault=fid),
                   TimelineEvent(at=s(inject), kind="inject", stage=name, fault=fid),
                   TimelineEvent(at=s(inject + 2), kind="verified" if verified else "verify-failed", stage=name,
                                 fault=fid, message="" if verified else "CoreDNS still answering after 2 s")]
        if status == "aborted":
            events += [TimelineEvent(at=s(inject + observe), kind="guardrail-breach", stage=name, message=reason,
                                     data={"guardrail": "dns-floor", "evaluable": True, "value": 0.41}),
                       TimelineEvent(at=s(inject + observe + 0.1), kind="abort", stage=name, message=reason)]
        events.append(TimelineEvent(at=s(rollback), kind="rollback" if ok else "rollback-failed", stage=name,
                                    fault=fid, message="" if ok else "configmap coredns: 409 conflict"))
        events.append(TimelineEvent(at=s(rollback), kind="recovery-start", stage=name))
        windows += [Window(kind="fault", stage=name, start=s(inject), end=s(inject + observe)),
                    Window(kind="recovery", stage=name, start=s(rollback), end=s(rollback + recovery_s))]
        fault_spans.append((inject, rollback))
        plan = {"changes": ["deployment kube-system/coredns replicas 2 -> 0" if i == 0 else
                            "configmap kube-system/coredns: servfail svc.cluster.local every 2nd query"],
                "undo": ["restore replicas 2" if i == 0 else "restore Corefile (resourceVersion 812)"]}
        evidence = {"dns_probe": "SERVFAIL 10/10", "deployment_ready_replicas": 0} if verified else \
            {"error": "CoreDNS still answering after 2 s", "dns_probe": "NOERROR 10/10"}
        stages.append(StageOutcome(
            name=name, status=status, reason=reason, approval=approval, started_at=s(cursor),
            ended_at=s(rollback + recovery_s),
            faults=[FaultOutcome(id=fid, kind="coredns-outage", stage=name, plan=plan, injected_at=s(inject),
                                 verified=verified, evidence=evidence, rolled_back_at=s(rollback), rollback_ok=ok,
                                 rollback_error=None if ok else "configmap coredns: 409 conflict")]))
        events.append(TimelineEvent(at=s(rollback + recovery_s), kind="stage-end", stage=name))
        cursor = int(rollback + recovery_s) + 2
    end = cursor + 3
    events.append(TimelineEvent(at=s(end), kind="campaign-end"))
    t = np.arange(0, end, 1.0)
    rows = []
    for o in campaign.observables:
        if scenario == "nodata" and o.name == "dns_success_ratio":
            continue
        pods = 3 if o.name == "api_latency" else 2 if o.name == "inference_rps" else 1
        for p in range(pods):
            series = f'{{pod="{o.name.split("_")[0]}-{p}"}}' if pods > 1 else ""
            rows.append(pd.DataFrame({"observable": o.name, "series": series,
                                      "timestamp": pd.to_datetime([s(x) for x in t], utc=True),
                                      "value": _signal(o.name, t, fault_spans, scenario, rng, p)}))
    out.mkdir(parents=True, exist_ok=True)
    pd.concat(rows, ignore_index=True).to_parquet(out / "frames.parquet", index=False)
    topology = {"nodes": 4, "versions": ["v1.32.0"], "objects": ["deployment/kube-system/coredns"]}
    fp = hashlib.sha256(json.dumps(topology, sort_keys=True).encode()).hexdigest()[:16]
    record = CampaignRecord(
        run_id=run_id or f"synthetic-{scenario}-{seed}", campaign=campaign.name, description=campaign.description,
        owner=campaign.owner, started_by="alice", status="aborted" if scenario == "aborted" else "completed",
        started_at=s(0), ended_at=s(end),
        target=TargetInfo(cluster="lab", api_server="https://127.0.0.1:6443", fingerprint=fp, topology=topology),
        blueprint=campaign.model_dump(mode="json", by_alias=True), blueprint_text=yaml.safe_dump(bp, sort_keys=False),
        windows=windows, stages=stages, events=sorted(events, key=lambda e: e.at),
        rollback_problems=["servfail: configmap coredns: 409 conflict (restore by hand)"] if scenario == "aborted" else [],
        frames_file="frames.parquet")
    (out / "record.json").write_text(record.model_dump_json(indent=1))
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1])
    for name in sys.argv[2:] or list(EXPECTED):
        print(make_run(target / name, name))
