"""nccl-partition from the runner: agent modes into real namespaces (success, abort, runner SIGKILL), and network-policy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from blueprints.common import NodeSelector, PodSelector
from blueprints.faults import NcclPartition
from lab.runtime.testing import wait_for
from lab.testing import LabHandle
from tasks.cluster import Cluster
from tasks.errors import InjectionFailed, NotFound
from tasks.faults.base import FaultContext
from tasks.faults.nccl_partition import NcclPartitionFault
from tests.agents.netpair import IP_B, NetPair, netpair
from tests.tasks.agents.conftest import AddNode

PORT = 5401

_RUNNER = """
import sys, time
from datetime import timedelta
from blueprints.common import NodeSelector
from blueprints.faults import NcclPartition
from tasks.agent_client import AgentClient
from tasks.cluster import Cluster
from tasks.faults.base import FaultContext
from tasks.faults.nccl_partition import NcclPartitionFault
from kubernetes import client
cfg = client.Configuration(); cfg.host = sys.argv[1]; cfg.api_key = {"authorization": "Bearer " + sys.argv[2]}
cfg.ssl_ca_cert = sys.argv[4]
cluster = Cluster(client.ApiClient(cfg))
ctx = FaultContext(cluster=cluster, run_id="run-k", agents=AgentClient(cluster, sys.argv[2]))
spec = NcclPartition(peers=[sys.argv[3]], selector=NodeSelector(names=["gpu-1"]), lease=timedelta(seconds=1.5))
f = NcclPartitionFault()
inj = f.inject(f.plan(spec, ctx, run_id="run-k", stage="s", fault_id="cut"), ctx)
print("injected", flush=True)
for _ in range(600):
    time.sleep(0.2)
    f.renew(inj, ctx)
"""


@pytest.fixture
def net(require_root: None) -> Iterator[NetPair]:
    """Two namespaces; node gpu-1 is namespace a; b listens on PORT."""
    with netpair() as pair:
        pair.listen(pair.b, IP_B, PORT)
        yield pair


def _spec(**kw: object) -> NcclPartition:
    base: dict[str, object] = {"peers": [IP_B], "selector": NodeSelector(names=["gpu-1"]), "lease": timedelta(seconds=20)}
    return NcclPartition.model_validate(base | kw)


def _cut(net: NetPair) -> str:
    return net.probe(net.a, IP_B, PORT, 0.5)


@pytest.mark.root
@pytest.mark.parametrize("mode", ["iptables", "nft"])
def test_partition_lands_and_rolls_back(gpu_node: AddNode, runner_ctx: FaultContext, net: NetPair, mode: str) -> None:
    """The agent on gpu-1 cuts a→b; verify sees the chain/table; rollback (twice) restores traffic and leaves no rules."""
    gpu_node("gpu-1", nvml="none", extra_args=["--netns", net.a, "--allow-cidr", "192.0.2.0/24"])
    fault = NcclPartitionFault()
    inj = fault.inject(fault.plan(_spec(mode=mode, action="REJECT"), runner_ctx, run_id="r", stage="s", fault_id="p"),
                       runner_ctx)
    assert _cut(net) == "refused"
    ev = fault.verify(inj, runner_ctx)
    assert ev.landed and ev.details["nodes"]["gpu-1"]["details"]["transport"] == "sockets"
    fault.renew(inj, runner_ctx)
    fault.rollback(inj, runner_ctx)
    fault.rollback(inj, runner_ctx)
    assert _cut(net) == "ok" and "GD-" not in net.iptables(net.a) and "gameday_" not in net.nft(net.a)


@pytest.mark.root
def test_abort_reverts_all_of_the_run(gpu_node: AddNode, runner_ctx: FaultContext, net: NetPair) -> None:
    """The abort path (revert-all for the run on the node's agent) removes the partition."""
    gpu_node("gpu-1", nvml="none", extra_args=["--netns", net.a, "--allow-cidr", "192.0.2.0/24"])
    fault = NcclPartitionFault()
    inj = fault.inject(fault.plan(_spec(), runner_ctx, run_id="r", stage="s", fault_id="p"), runner_ctx)
    assert _cut(net) == "timeout"
    res = runner_ctx.agents.for_node("gpu-1").revert_all(inj.undo["agent_run_id"])
    assert [r.reverted for r in res.results] == [True]
    assert _cut(net) == "ok" and "GD-" not in net.iptables(net.a)


@pytest.mark.root
def test_runner_sigkill_lease_expires_and_agent_heals(gpu_node: AddNode, agent_api: LabHandle,
                                                      net: NetPair) -> None:
    """A runner process that renews, then is SIGKILLed: the agent removes the partition when the lease runs out."""
    agent = gpu_node("gpu-1", nvml="none", extra_args=["--netns", net.a, "--allow-cidr", "192.0.2.0/24"])
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen([sys.executable, "-c", _RUNNER, agent_api.url, agent_api.runner_token, IP_B,
                             str(agent_api.ca_file)],
                            stdout=subprocess.PIPE, text=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "injected"
        assert _cut(net) == "timeout"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        wait_for(lambda: "GD-" not in net.iptables(net.a), timeout=10)
        assert _cut(net) == "ok"
        assert "(lease-expired)" in agent.log_path.read_text()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_network_policy_mode_creates_and_deletes_exactly_its_policy(admin: Cluster, runner_ctx: FaultContext) -> None:
    """network-policy mode isolates the labelled pods with one NetworkPolicy per namespace and deletes it on rollback."""
    from kubernetes import client

    admin.ensure_namespace("train")
    core = client.CoreV1Api(admin.api_client)
    # no controller runs to create the namespace's default service account the pods run as
    core.create_namespaced_service_account("train", client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="default")))
    for i in range(2):
        core.create_namespaced_pod("train", {"apiVersion": "v1", "kind": "Pod",
                                             "metadata": {"name": f"rank-{i}", "labels": {"job": "llm"}},
                                             "spec": {"containers": [{"name": "t", "image": "x"}]}})
    try:
        spec = NcclPartition(mode="network-policy", direction="both",
                             pod_selector=PodSelector(namespaces=["train"], label_selector={"job": "llm"}, mode="all"))
        fault = NcclPartitionFault()
        inj = fault.plan(spec, runner_ctx, run_id="r", stage="s", fault_id="np")
        assert inj.targets == ["pod/train/rank-0", "pod/train/rank-1"]
        inj = fault.inject(inj, runner_ctx)
        assert fault.verify(inj, runner_ctx).landed
        pol = admin.read_network_policy("train", inj.undo["name"])
        assert pol.spec.policy_types == ["Ingress", "Egress"] and pol.spec.ingress in (None, [])
        fault.renew(inj, runner_ctx)
        fault.rollback(inj, runner_ctx)
        fault.rollback(inj, runner_ctx)
        with pytest.raises(NotFound):
            admin.read_network_policy("train", inj.undo["name"])
        with pytest.raises(InjectionFailed, match="must be 'all'"):
            fault.plan(spec.model_copy(update={"pod_selector": PodSelector(namespaces=["train"], label_selector={"job": "llm"})}),
                       runner_ctx, run_id="r", stage="s", fault_id="np")
    finally:
        for i in range(2):
            core.delete_namespaced_pod(f"rank-{i}", "train")
