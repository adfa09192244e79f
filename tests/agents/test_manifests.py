"""The agent's Kubernetes manifests: least-privilege RBAC, a privileged host DaemonSet whose args the agent accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from agents.config import parse

MANIFESTS = Path(__file__).resolve().parents[2] / "agents" / "manifests"


def _docs() -> list[dict[str, Any]]:
    return [d for f in sorted(MANIFESTS.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


def _one(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in _docs() if d["kind"] == kind and d["metadata"]["name"] == name)


def test_agent_role_only_creates_reviews() -> None:
    """The agent's ClusterRole allows exactly TokenReview and SubjectAccessReview create, bound to its ServiceAccount."""
    role = _one("ClusterRole", "gameday-agent")
    assert role["rules"] == [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
    ]
    binding = _one("ClusterRoleBinding", "gameday-agent")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "gameday-agent", "namespace": "gameday"}]


def test_daemonset_is_privileged_on_the_host_and_gpu_nodes_only() -> None:
    """hostPID, hostNetwork, privileged, /dev/kmsg mounted, GPU nodes only."""
    pod = _one("DaemonSet", "gameday-agent")["spec"]["template"]["spec"]
    assert pod["hostPID"] and pod["hostNetwork"] and pod["serviceAccountName"] == "gameday-agent"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    container = pod["containers"][0]
    assert container["securityContext"]["privileged"] is True
    assert {"name": "kmsg", "mountPath": "/dev/kmsg"} in container["volumeMounts"]


def test_daemonset_args_are_accepted_by_the_agent(tmp_path: Path) -> None:
    """The DaemonSet's command line parses, with the allow-list from the ConfigMap."""
    allow = _one("ConfigMap", "gameday-agent-allow")["data"]["allow.yaml"]
    (tmp_path / "allow.yaml").write_text(allow)
    args = [a.replace("$(NODE_NAME)", "gpu-1").replace("/etc/gameday-agent/allow.yaml", str(tmp_path / "allow.yaml"))
            for a in _one("DaemonSet", "gameday-agent")["spec"]["template"]["spec"]["containers"][0]["args"]]
    cfg = parse(args)
    assert cfg.node == "gpu-1" and cfg.port == 9470 and "gameday-runner" in cfg.allow_users
    assert cfg.authorize == "any"
    assert cfg.tls_cert is not None and cfg.api.url == "https://kubernetes.default.svc"


def test_the_daemonset_and_the_runner_agree_on_the_agents_audience(tmp_path: Path) -> None:
    """The agents accept only tokens issued for the runner's default ``agent_audience``, the runner's default account
    is on their allow-list, and the runner may ask TokenRequest for that account's token and no other."""
    from tasks.settings import Settings

    (tmp_path / "allow.yaml").write_text(_one("ConfigMap", "gameday-agent-allow")["data"]["allow.yaml"])
    args = [a.replace("$(NODE_NAME)", "gpu-1").replace("/etc/gameday-agent/allow.yaml", str(tmp_path / "allow.yaml"))
            for a in _one("DaemonSet", "gameday-agent")["spec"]["template"]["spec"]["containers"][0]["args"]]
    cfg, settings = parse(args), Settings()
    assert cfg.audiences == (settings.agent_audience,)
    namespace, _, account = settings.agent_service_account.partition("/")
    assert f"system:serviceaccount:{namespace}:{account}" in cfg.allow_users
    role = _one("Role", "gameday-runner-agent-token")
    assert role["metadata"]["namespace"] == namespace and role["rules"] == [
        {"apiGroups": [""], "resources": ["serviceaccounts/token"], "resourceNames": [account], "verbs": ["create"]}]
    assert _one("RoleBinding", "gameday-runner-agent-token")["roleRef"]["name"] == "gameday-runner-agent-token"


def test_runner_role_covers_agent_discovery_and_network_policies() -> None:
    """The runner may read nodes and pods (to find agents) and create/delete NetworkPolicies."""
    rules = _one("ClusterRole", "gameday-runner")["rules"]
    allowed = {(r, v) for rule in rules for r in rule["resources"] for v in rule["verbs"]}
    assert {("nodes", "get"), ("pods", "list"), ("networkpolicies", "create"), ("networkpolicies", "delete")} <= allowed


def test_runner_role_may_use_the_agents() -> None:
    """The runner's ClusterRole grants every agentfaults.gameday.dev verb an agent's SubjectAccessReview asks for."""
    rules = _one("ClusterRole", "gameday-runner")["rules"]
    granted = {v for rule in rules if "gameday.dev" in rule["apiGroups"] and "agentfaults" in rule["resources"]
               for v in rule["verbs"]}
    assert granted >= {"create", "update", "delete", "get", "list"}


def test_janitor_may_only_undo_and_read() -> None:
    """The janitor's ClusterRole creates nothing, reads no Secret, and has the verbs the stock faults' rollbacks use;
    its namespaced Role covers the Lease and Events only; both are bound to its own ServiceAccount alone."""
    rules = _one("ClusterRole", "gameday-janitor")["rules"]
    allowed = {(r, v) for rule in rules for r in rule["resources"] for v in rule["verbs"]}
    assert not [rv for rv in allowed if rv[1] in ("create", "*") or rv[0] in ("secrets", "*")], allowed
    assert {("deployments", "patch"), ("nodes", "patch"), ("networkpolicies", "delete"), ("daemonsets", "delete"),
            ("configmaps", "patch"), ("flowschemas", "delete"), ("prioritylevelconfigurations", "delete"),
            ("agentfaults", "delete")} <= allowed
    role = {(r, v) for rule in _one("Role", "gameday-janitor")["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert {r for r, _ in role} == {"leases", "events"} and ("events", "create") in role
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        assert _one(kind, "gameday-janitor")["subjects"] == [
            {"kind": "ServiceAccount", "name": "gameday-janitor", "namespace": "gameday"}]


def test_janitor_deployment_args_are_accepted_by_gameday() -> None:
    """The Deployment's container arguments parse as a `gameday` command line: outside a pod they get the clear
    in-cluster error (exit 3), not a usage error (exit 2)."""
    import subprocess
    import sys

    pod = _one("Deployment", "gameday-janitor")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "gameday-janitor" and _one("Deployment", "gameday-janitor")["spec"]["replicas"] == 1
    args = pod["containers"][0]["args"]
    assert args[:2] == ["janitor", "--in-cluster"]
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    proc = subprocess.run([sys.executable, "-m", "flows.cli", *args, "--once"], cwd=MANIFESTS.parents[1], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 3 and "not running in a pod" in proc.stderr, (proc.returncode, proc.stderr)
