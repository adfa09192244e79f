"""Finding and calling agents: annotation or DaemonSet pod, lost leases, unreachable agents, fresh-process rollback."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from kubernetes import client

from blueprints.common import NodeSelector
from blueprints.faults import GpuDegrade
from lab.runtime.testing import wait_for
from tasks.agent_client import AgentClient, AgentUnreachable
from tasks.cluster import Cluster
from tasks.errors import AgentError, TargetError
from tasks.faults.agent_held import agent_ids
from tasks.faults.base import FaultContext, Injection
from tasks.faults.gpu_degrade import GpuDegradeFault
from tests.tasks.agents.conftest import AddNode


def _spec(lease: float = 20) -> GpuDegrade:
    return GpuDegrade(power_limit_w=300, selector=NodeSelector(names=["gpu-1"]), lease=timedelta(seconds=lease))


def test_endpoint_from_daemonset_pod(admin: Cluster, runner_ctx: FaultContext) -> None:
    """Without the annotation, the agent is the running gameday-agent pod on that node (pod IP + port)."""
    # the shipped DaemonSet's pod runs as gameday/gameday-agent (agents/manifests/20-agent-daemonset.yaml)
    core = client.CoreV1Api(admin.api_client)
    core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gpu-9"}})
    admin.ensure_namespace("gameday")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "agent-x", "labels": {"app.kubernetes.io/name": "gameday-agent"}},
           "spec": {"nodeName": "gpu-9", "serviceAccountName": "gameday-agent",
                    "containers": [{"name": "agent", "image": "gameday/agent"}]}}
    core.create_namespaced_pod("gameday", pod)
    try:
        with pytest.raises(AgentUnreachable, match="no running gameday-agent pod on node gpu-9"):
            runner_ctx.agents.endpoint("gpu-9")
        core.patch_namespaced_pod_status("agent-x", "gameday", {"status": {"phase": "Running", "podIP": "10.1.2.3"}})
        assert runner_ctx.agents.endpoint("gpu-9") == "https://10.1.2.3:9470"  # the DaemonSet serves TLS
    finally:
        core.delete_namespaced_pod("agent-x", "gameday", grace_period_seconds=0)  # no kubelet confirms a graceful one


def test_fake_lost_lease_makes_renew_fail(gpu_node: AddNode, runner_ctx: FaultContext) -> None:
    """When the agent already reverted (lease expired), renew raises so the stage aborts."""
    agent = gpu_node("gpu-1")
    fault = GpuDegradeFault()
    inj = fault.inject(fault.plan(_spec(lease=0.5), runner_ctx, run_id="run-t", stage="s", fault_id="d"), runner_ctx)
    wait_for(lambda: json.loads(agent.state_file.read_text())["faults"] == [], timeout=10)
    with pytest.raises(AgentError, match="no longer holds"):
        fault.renew(inj, runner_ctx)


def test_fake_rollback_from_a_fresh_process_view(gpu_node: AddNode, runner_ctx: FaultContext) -> None:
    """Rollback needs only the Injection (as read back from the ledger) and a new AgentClient."""
    agent = gpu_node("gpu-1")
    fault = GpuDegradeFault()
    inj = fault.inject(fault.plan(_spec(), runner_ctx, run_id="run-t", stage="s", fault_id="d"), runner_ctx)
    again = Injection.model_validate_json(inj.model_dump_json())
    fresh = FaultContext(cluster=runner_ctx.cluster, run_id="other", agents=AgentClient(runner_ctx.cluster,
                                                                                        runner_ctx.agents.token))
    fault.rollback(again, fresh)
    assert json.loads(agent.state_file.read_text())["faults"] == []
    assert agent_ids(inj)[0].startswith("d-")


def test_fake_unreachable_agent_rollback_is_logged_and_lease_reverts(gpu_node: AddNode, runner_ctx: FaultContext,
                                                                    runner_logs: list[str]) -> None:
    """If the agent is down at rollback, rollback logs that the lease will expire; the restarted agent reverts."""
    agent = gpu_node("gpu-1")
    fault = GpuDegradeFault()
    inj = fault.inject(fault.plan(_spec(), runner_ctx, run_id="run-t", stage="s", fault_id="d"), runner_ctx)
    agent.kill()
    fault.rollback(inj, runner_ctx)
    assert any("will expire" in line for line in runner_logs)
    agent.start()
    assert json.loads(agent.state_file.read_text())["faults"] == []


def test_wrong_runner_token_is_refused(gpu_node: AddNode, runner_ctx: FaultContext) -> None:
    """An AgentClient with a token the cluster does not know gets a clear AgentError and nothing lands."""
    agent = gpu_node("gpu-1")
    bad = AgentClient(runner_ctx.cluster, "not-a-token")
    with pytest.raises(AgentError, match="HTTP 401"):
        bad.for_node("gpu-1").devices()
    assert not agent.state_file.exists()


def test_node_without_agent_fails_at_plan(admin: Cluster, runner_ctx: FaultContext) -> None:
    """A chosen node with no agent (no annotation, no agent pod) is a clear TargetError before anything is applied."""
    client.CoreV1Api(admin.api_client).create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gpu-1"}})
    with pytest.raises(TargetError, match="no running gameday-agent pod on node gpu-1"):
        GpuDegradeFault().plan(_spec(), runner_ctx, run_id="r", stage="s", fault_id="d")
