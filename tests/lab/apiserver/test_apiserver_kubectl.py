"""kubectl 1.32 contract tests: get/describe/create/apply/patch/scale/cordon/drain/delete/wait/raw."""

from __future__ import annotations

import json
import subprocess
import textwrap

import yaml
from kubernetes import client

from lab.apiserver.testing import poll_until
from tests.lab.apiserver.conftest import Kubectl

DEPLOYMENT = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: web, namespace: {ns}, labels: {{app: web}}}}
    spec:
      replicas: {replicas}
      selector: {{matchLabels: {{app: web}}}}
      template:
        metadata: {{labels: {{app: web}}}}
        spec:
          containers:
          - {{name: web, image: lab/model-server, env: [{{name: A, value: "1"}}]}}
    """)


def _pod_yaml(ns: str, name: str, node: str, owner: dict[str, str] | None = None) -> str:
    meta: dict[str, object] = {"name": name, "namespace": ns, "labels": {"app": "web"}}
    if owner:
        meta["ownerReferences"] = [owner]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "lab/pause"}]},
    }
    return yaml.safe_dump(pod)


def test_get_formats_and_selectors(kubectl: Kubectl, namespace: str) -> None:
    """kubectl get works as a table, as JSON/YAML, with -l, --field-selector and -A."""
    kubectl("create", "-f", "-", stdin=_pod_yaml(namespace, "p1", "node-a"))
    kubectl("create", "-f", "-", stdin=_pod_yaml(namespace, "p2", "node-b"))
    table = kubectl("get", "pods", "-n", namespace).stdout
    assert table.split()[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"] and "p1" in table
    as_json = json.loads(kubectl("get", "po", "-n", namespace, "-o", "json").stdout)
    assert [i["metadata"]["name"] for i in as_json["items"]] == ["p1", "p2"]
    as_yaml = yaml.safe_load(kubectl("get", "pod", "p1", "-n", namespace, "-o", "yaml").stdout)
    assert as_yaml["spec"]["nodeName"] == "node-a"
    names = kubectl(
        "get", "pods", "-A", "-l", "app=web", "--field-selector", "spec.nodeName=node-b", "-o", "name"
    ).stdout.split()
    assert "pod/p2" in names and "pod/p1" not in names
    wide = kubectl("get", "pods", "-A", "--field-selector", f"metadata.namespace={namespace}").stdout
    assert wide.split()[0] == "NAMESPACE" and namespace in wide


def test_describe_pod(kubectl: Kubectl, namespace: str) -> None:
    """kubectl describe renders a pod."""
    kubectl("create", "-f", "-", stdin=_pod_yaml(namespace, "p1", "node-a"))
    out = kubectl("describe", "pod", "p1", "-n", namespace).stdout
    assert "Name:" in out and "node-a" in out and "lab/pause" in out


def test_apply_twice_create_then_update(kubectl: Kubectl, namespace: str) -> None:
    """kubectl apply creates, then updates through a strategic merge patch."""
    first = kubectl("apply", "-f", "-", stdin=DEPLOYMENT.format(ns=namespace, replicas=2)).stdout
    assert "created" in first
    again = kubectl("apply", "-f", "-", stdin=DEPLOYMENT.format(ns=namespace, replicas=2)).stdout
    assert "unchanged" in again
    third = kubectl("apply", "-f", "-", stdin=DEPLOYMENT.format(ns=namespace, replicas=4)).stdout
    assert "configured" in third
    got = json.loads(kubectl("get", "deploy", "web", "-n", namespace, "-o", "json").stdout)
    assert got["spec"]["replicas"] == 4 and got["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in got["metadata"]["annotations"]


def test_patch_kinds_and_scale(kubectl: Kubectl, namespace: str) -> None:
    """kubectl patch (merge, strategic, json) and scale change the deployment."""
    kubectl("apply", "-f", "-", stdin=DEPLOYMENT.format(ns=namespace, replicas=1))
    kubectl("patch", "deploy", "web", "-n", namespace, "--type", "merge", "-p", '{"spec":{"replicas":2}}')
    kubectl(
        "patch",
        "deploy",
        "web",
        "-n",
        namespace,
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"B","value":"2"}]}]}}}}',
    )
    kubectl(
        "patch",
        "deploy",
        "web",
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        '[{"op":"add","path":"/metadata/labels/patched","value":"yes"}]',
    )
    kubectl("scale", "deploy", "web", "-n", namespace, "--replicas", "3")
    got = json.loads(kubectl("get", "deploy", "web", "-n", namespace, "-o", "json").stdout)
    env = got["spec"]["template"]["spec"]["containers"][0]["env"]
    assert got["spec"]["replicas"] == 3 and got["metadata"]["labels"]["patched"] == "yes"
    assert {e["name"] for e in env} == {"A", "B"}


def test_cordon_drain_uncordon(
    kubectl: Kubectl, core: client.CoreV1Api, api_client: client.ApiClient, namespace: str
) -> None:
    """cordon marks the node unschedulable; drain evicts its pods (skipping DaemonSet pods); uncordon undoes it all."""
    node = "drain-node"
    kubectl(
        "create",
        "-f",
        "-",
        stdin=yaml.safe_dump({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}),
    )
    try:
        ds = client.AppsV1Api(api_client).create_namespaced_daemon_set(
            namespace,
            client.V1DaemonSet(
                metadata=client.V1ObjectMeta(name="agent"),
                spec=client.V1DaemonSetSpec(
                    selector=client.V1LabelSelector(match_labels={"app": "agent"}),
                    template=client.V1PodTemplateSpec(
                        metadata=client.V1ObjectMeta(labels={"app": "agent"}),
                        spec=client.V1PodSpec(containers=[client.V1Container(name="a", image="lab/pause")]),
                    ),
                ),
            ),
        )
        owner = {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "name": "agent",
            "uid": ds.metadata.uid,
            "controller": True,
        }
        kubectl("create", "-f", "-", stdin=_pod_yaml(namespace, "work", node))
        kubectl("create", "-f", "-", stdin=_pod_yaml(namespace, "agent-x", node, owner))
        before = api_client.sanitize_for_serialization(core.read_node(node).spec)
        kubectl("cordon", node)
        assert core.read_node(node).spec.unschedulable is True
        out = kubectl(
            "drain", node, "--ignore-daemonsets", "--force", "--delete-emptydir-data", "--timeout=30s"
        )
        assert "evicted" in out.stdout + out.stderr
        left = {p.metadata.name for p in core.list_namespaced_pod(namespace).items}
        assert left == {"agent-x"}
        kubectl("uncordon", node)
        core.patch_node(node, {"spec": {"taints": []}})  # what a controller writes when it drops the last taint
        # like the real server (omitempty), neither `unschedulable: false` nor `taints: []` is served back
        assert api_client.sanitize_for_serialization(core.read_node(node).spec) == before
    finally:
        kubectl("delete", "node", node, check=False)


def test_delete_and_wait_for_delete(kubectl: Kubectl, namespace: str) -> None:
    """kubectl wait --for=delete returns once another client deletes the pod."""
    kubectl("create", "-f", "-", stdin=_pod_yaml(namespace, "gone", "node-a"))
    waiter = subprocess.Popen(
        [
            kubectl.binary,
            "--kubeconfig",
            str(kubectl.kubeconfig),
            "wait",
            "--for=delete",
            "pod/gone",
            "-n",
            namespace,
            "--timeout=30s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "deleted" in kubectl("delete", "pod", "gone", "-n", namespace).stdout
        _out, err = waiter.communicate(timeout=40)
        assert waiter.returncode == 0, err
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.communicate()


def test_wait_for_condition(kubectl: Kubectl, core: client.CoreV1Api, namespace: str) -> None:
    """kubectl wait --for=condition=Ready sees a condition set through a status patch."""
    kubectl("create", "-f", "-", stdin=_pod_yaml(namespace, "readyme", "node-a"))
    waiter = subprocess.Popen(
        [
            kubectl.binary,
            "--kubeconfig",
            str(kubectl.kubeconfig),
            "wait",
            "--for=condition=Ready",
            "pod/readyme",
            "-n",
            namespace,
            "--timeout=30s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        core.patch_namespaced_pod_status(
            "readyme", namespace, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
        )
        out, err = waiter.communicate(timeout=40)
        assert waiter.returncode == 0, err
        assert "condition met" in out
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.communicate()


def test_raw_metrics(kubectl: Kubectl) -> None:
    """kubectl get --raw /metrics returns the Prometheus exposition with the apiserver metric names."""
    kubectl("get", "ns")
    out = kubectl("get", "--raw", "/metrics").stdout
    for name in (
        "apiserver_request_total",
        "apiserver_request_duration_seconds_bucket",
        "apiserver_current_inflight_requests",
        "apiserver_flowcontrol_current_executing_requests",
        "apiserver_storage_objects",
    ):
        assert name in out
    assert poll_until(lambda: 'resource="namespaces"' in kubectl("get", "--raw", "/metrics").stdout)


def test_auth_whoami_and_can_i(kubectl: Kubectl) -> None:
    """kubectl auth whoami names the context's user; can-i says yes for the admin (system:masters)."""
    out = kubectl("auth", "whoami", "--context", "lab-gameday-runner").stdout
    assert "gameday-runner" in out and "gameday:runners" in out
    assert kubectl("auth", "can-i", "delete", "nodes").stdout.strip() == "yes"


def test_drain_dry_run_server_keeps_pods(kubectl: Kubectl, core: client.CoreV1Api, namespace: str) -> None:
    """kubectl drain --dry-run=server evicts nothing."""
    node = "dry-node"
    kubectl(
        "create",
        "-f",
        "-",
        stdin=yaml.safe_dump({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}),
    )
    try:
        kubectl("create", "-f", "-", stdin=_pod_yaml(namespace, "stay", node))
        out = kubectl("drain", node, "--force", "--ignore-daemonsets", "--dry-run=server", "--timeout=20s")
        assert "server dry run" in out.stdout + out.stderr
        assert core.read_namespaced_pod("stay", namespace).metadata.name == "stay"
    finally:
        kubectl("delete", "node", node, check=False)


def test_server_side_apply_creates_then_updates(kubectl: Kubectl, namespace: str) -> None:
    """kubectl apply --server-side creates a missing object and then patches it."""
    first = kubectl("apply", "--server-side", "-f", "-", stdin=DEPLOYMENT.format(ns=namespace, replicas=1))
    assert "serverside-applied" in first.stdout
    kubectl("apply", "--server-side", "-f", "-", stdin=DEPLOYMENT.format(ns=namespace, replicas=3))
    got = json.loads(kubectl("get", "deploy", "web", "-n", namespace, "-o", "json").stdout)
    assert got["spec"]["replicas"] == 3
