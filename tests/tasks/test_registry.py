"""The fault registry: every spec kind has exactly one behaviour and the reverse."""

from __future__ import annotations

from typing import Any

import pytest

from blueprints.faults import FAULT_KINDS
from tasks.errors import UnknownFaultKind
from tasks.faults import REGISTRY, behaviour


def test_every_kind_has_one_behaviour_and_the_reverse() -> None:
    """Registered kinds are exactly FAULT_KINDS, and each behaviour is filed under its own kind."""
    assert sorted(REGISTRY) == sorted(FAULT_KINDS)
    assert all(REGISTRY[k].kind == k for k in REGISTRY)


def test_every_behaviour_implements_the_contract() -> None:
    """Each behaviour has plan, inject, verify, rollback and renew."""
    for kind, b in REGISTRY.items():
        missing = [m for m in ("plan", "inject", "verify", "rollback", "renew") if not callable(getattr(b, m, None))]
        assert not missing, f"{kind} lacks {missing}"


def test_unknown_kind_is_a_typed_error() -> None:
    """Asking for an unregistered kind raises UnknownFaultKind naming the known ones."""
    with pytest.raises(UnknownFaultKind, match="noop"):
        behaviour("no-such-kind")


_XID = {"kind": "gpu-xid", "code": 79, "gpu_index": 0, "count": 1, "interval_seconds": 1.0, "dcgm": True,
        "pci_address": None}
_AGENT = {"agent_fault_id": "f-0123456789ab", "agent_run_id": "r1", "ttl_seconds": 60.0,
          "endpoints": {"gpu-0": "https://10.0.0.5:9470"}}
_BASELINE = {"server": "10.96.0.10:53", "qname": "kube-dns.kube-system.svc.cluster.local", "rcode": "NOERROR",
             "elapsed_s": 0.0012, "broken": False}
LEDGER_UNDO = [  # an undo of every kind (and mode) as ledgers hold it, written before the undo models
    ("pod-kill", {"pods": [{"namespace": "work", "name": "web-0", "uid": "u-1"}],
                  "running_before": {"work": 3}, "namespaces": ["work"], "labels": {"app": "web"},
                  "field_selector": None, "grace_s": 0, "deleted": ["work/web-0"]}),
    ("node-cordon", {"nodes": ["n0", "n1"], "cordon": ["n0"], "already_cordoned": ["n1"], "drain": True,
                     "evicted": ["work/web-0"]}),
    ("coredns-outage", {"mode": "scale-to-zero", "namespace": "kube-system", "deployment": "coredns",
                        "replicas": 2, "dns_baseline": _BASELINE}),
    ("coredns-outage", {"mode": "block", "namespace": "kube-system", "policy": "gameday-dns-block-r1-f",
                        "pod_labels": {"k8s-app": "kube-dns"}}),
    ("coredns-outage", {"mode": "corefile", "namespace": "kube-system", "configmap": "coredns",
                        "original": "a\n", "edited": "b\n", "tag": "r1/f", "zones": ["cluster.local."],
                        "action": "delay", "every": 2, "delay_s": 1.5, "qname": "web.work.svc.cluster.local"}),
    ("control-plane-overload", {"mode": "client-storm", "breakglass": "gameday-breakglass-r1",
                                "runner_user": "admin", "tag": "r1/f", "ballast": "ballast-r1-f",
                                "namespace": "gameday", "created_namespace": True,
                                "stats_path": "/tmp/storm/r1-f.json",
                                "storm_identity": "system:serviceaccount:telemetry:telemetry",
                                "identity_note": "lab telemetry service account"}),
    ("control-plane-overload", {"mode": "daemonset-storm", "breakglass": None, "runner_user": "admin",
                                "tag": "r1/f", "namespace": "telemetry", "daemonset": "gameday-storm-r1-f",
                                "created_namespace": False}),
    ("chaostoolkit", {"action": {"type": "action", "name": "f-action",
                                 "provider": {"type": "process", "path": "touch", "arguments": "/tmp/x"}},
                      "rollback": None,
                      "verify": {"type": "probe", "name": "f-verify", "timeout": 5,
                                 "provider": {"type": "python", "module": "os.path", "func": "exists",
                                              "arguments": {"path": "/tmp/x"}}},
                      "configuration": {"a": 1}, "secrets": {}, "action_result": "None"}),
    ("gpu-xid", {**_AGENT, "params": {"gpu-0": _XID}}),
    ("gpu-degrade", {**_AGENT, "params": {"gpu-0": {"kind": "gpu-degrade", "gpu_index": 1,
                                                    "sm_clock_mhz": 900, "power_limit_w": None,
                                                    "hold_memory_gib": None}}}),
    ("nccl-partition", {**_AGENT, "mode": "nft", "params": {"gpu-0": {
        "kind": "nccl-partition", "backend": "nft", "action": "REJECT", "direction": "both",
        "peers": ["10.0.0.6/32"], "port_range": [29500, 29600], "interface": None, "transport": "sockets"}}}),
    ("nccl-partition", {"mode": "network-policy", "name": "gameday-partition-0123456789",
                        "namespaces": ["train"], "labels": {"app": "trainer"}, "direction": "ingress"}),
    ("noop", {}),
]


@pytest.mark.parametrize(("kind", "undo"), LEDGER_UNDO,
                         ids=[f"{kind}-{i}" for i, (kind, _) in enumerate(LEDGER_UNDO)])
def test_undo_models_read_the_ledgers_written_before_them(kind: str, undo: dict[str, Any]) -> None:
    """Each kind's undo model reads an undo as ledgers hold it (keys it no longer knows, even inside an agent's
    request, ignored) and writes every key back unchanged."""
    older = {**undo, "from_an_older_version": 1}
    if "params" in undo:
        older["params"] = {n: {**p, "from_an_older_version": 1} for n, p in undo["params"].items()}
    written = REGISTRY[kind].undo.model_validate(older).model_dump(mode="json")
    assert {k: written[k] for k in undo} == undo
