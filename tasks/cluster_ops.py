"""The resource calls of :class:`tasks.cluster.Cluster`: exactly what faults, probes and the ledger use.

Each method is one API call through ``self.call`` (typed errors, timeout). Bodies are plain dicts in
Kubernetes' JSON shape; results are the official client's models unless a method says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client as k8s

from tasks.errors import Conflict, NotFound, TargetError

T = TypeVar("T")

Manifest = dict[str, Any]
"""A Kubernetes object as JSON, as the API server takes it (``apiVersion``, ``kind``, ``metadata``, ...)."""


def label_selector(labels: dict[str, str] | None) -> str:
    """``{"a": "b", "c": "d"}`` → ``"a=b,c=d"`` (empty for none)."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


class ClusterOps:
    """Resource-level calls; mixed into ``Cluster``, which provides ``call`` and the API objects."""

    core: k8s.CoreV1Api
    apps: k8s.AppsV1Api
    net: k8s.NetworkingV1Api
    coord: k8s.CoordinationV1Api
    flow: k8s.FlowcontrolApiserverV1Api

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Provided by Cluster."""
        raise NotImplementedError

    def _gone_ok(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        """Delete-style call; False when the object was already gone."""
        try:
            self.call(what, fn, *args, **kwargs)
            return True
        except NotFound:
            return False

    # -- workloads ---------------------------------------------------------------------------------------------

    def read_deployment(self, namespace: str, name: str) -> k8s.V1Deployment:
        """One Deployment."""
        return self.call(f"get deployment {namespace}/{name}", self.apps.read_namespaced_deployment, name, namespace)

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        """Set a Deployment's spec.replicas."""
        self.call(f"scale deployment {namespace}/{name}", self.apps.patch_namespaced_deployment,
                  name, namespace, {"spec": {"replicas": replicas}})

    def read_daemonset(self, namespace: str, name: str) -> k8s.V1DaemonSet:
        """One DaemonSet."""
        return self.call(f"get daemonset {namespace}/{name}", self.apps.read_namespaced_daemon_set, name, namespace)

    def create_daemonset(self, namespace: str, body: Manifest) -> None:
        """Create a DaemonSet."""
        self.call(f"create daemonset {namespace}", self.apps.create_namespaced_daemon_set, namespace, body)

    def delete_daemonset(self, namespace: str, name: str) -> bool:
        """Delete a DaemonSet (False if already gone)."""
        return self._gone_ok(f"delete daemonset {namespace}/{name}", self.apps.delete_namespaced_daemon_set,
                             name, namespace, propagation_policy="Background")

    # -- pods and nodes ----------------------------------------------------------------------------------------

    def list_pods(self, namespaces: list[str] | None = None, labels: dict[str, str] | None = None,
                  field_selector: str | None = None) -> list[k8s.V1Pod]:
        """Pods in the given namespaces (None: all) matching labels and a field selector."""
        selectors = {"label_selector": label_selector(labels), "field_selector": field_selector or None}
        if namespaces is None:
            return list(self.call("list pods", self.core.list_pod_for_all_namespaces, **selectors).items)
        pods: list[k8s.V1Pod] = []
        for ns in namespaces:
            pods.extend(self.call(f"list pods in {ns}", self.core.list_namespaced_pod, ns, **selectors).items)
        return pods

    def delete_pod(self, namespace: str, name: str, grace_seconds: int = 0) -> bool:
        """Delete a pod (False if already gone)."""
        return self._gone_ok(f"delete pod {namespace}/{name}", self.core.delete_namespaced_pod, name, namespace,
                             grace_period_seconds=grace_seconds)

    def delete_pods(self, namespace: str, labels: dict[str, str]) -> int:
        """Delete every pod of a namespace matching labels in one call (deletecollection); how many went."""
        result = self.call(f"delete pods {label_selector(labels)} in {namespace}",
                           self.core.delete_collection_namespaced_pod, namespace,
                           label_selector=label_selector(labels), grace_period_seconds=0)
        return len(getattr(result, "items", None) or [])

    def evict_pod(self, namespace: str, name: str) -> bool:
        """Evict a pod through the eviction API (False if already gone)."""
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
        return self._gone_ok(f"evict pod {namespace}/{name}", self.core.create_namespaced_pod_eviction,
                             name, namespace, body)

    def list_nodes(self, labels: dict[str, str] | None = None) -> list[k8s.V1Node]:
        """Nodes matching labels."""
        return list(self.call("list nodes", self.core.list_node, label_selector=label_selector(labels)).items)

    def read_node(self, name: str) -> k8s.V1Node:
        """One node."""
        return self.call(f"get node {name}", self.core.read_node, name)

    def set_unschedulable(self, name: str, unschedulable: bool) -> None:
        """Cordon (True) or uncordon (False) a node."""
        verb = "cordon" if unschedulable else "uncordon"
        self.call(f"{verb} node {name}", self.core.patch_node, name, {"spec": {"unschedulable": unschedulable}})

    # -- service accounts -------------------------------------------------------------------------------------

    def request_token(self, namespace: str, name: str, seconds: int = 3600, audience: str | None = None) -> str:
        """A token for service account namespace/name from the TokenRequest API (NotFound if it has none), valid
        for at least ``seconds`` (600 at the least) and, with ``audience``, only for that audience."""
        spec: dict[str, object] = {"expirationSeconds": seconds}
        if audience:
            spec["audiences"] = [audience]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        made = self.call(f"request a token for {namespace}/{name}" + (f" (audience {audience})" if audience else ""),
                         self.core.create_namespaced_service_account_token, name, namespace, body)
        if made.status is None or not made.status.token:
            raise TargetError(f"TokenRequest for {namespace}/{name} returned no token")
        return str(made.status.token)

    # -- namespaces, config maps, network policies ------------------------------------------------------------

    def namespace_exists(self, name: str) -> bool:
        """Whether a namespace exists."""
        try:
            self.call(f"get namespace {name}", self.core.read_namespace, name)
            return True
        except NotFound:
            return False

    def ensure_namespace(self, name: str, labels: dict[str, str] | None = None) -> bool:
        """Create a namespace unless it exists; True when this call created it."""
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
        try:
            self.call(f"create namespace {name}", self.core.create_namespace, body)
            return True
        except Conflict:
            return False

    def delete_namespace(self, name: str) -> bool:
        """Delete a namespace (False if already gone)."""
        return self._gone_ok(f"delete namespace {name}", self.core.delete_namespace, name)

    def read_configmap(self, namespace: str, name: str) -> k8s.V1ConfigMap:
        """One ConfigMap."""
        return self.call(f"get configmap {namespace}/{name}", self.core.read_namespaced_config_map, name, namespace)

    def create_configmap(self, namespace: str, body: Manifest) -> None:
        """Create a ConfigMap."""
        self.call(f"create configmap in {namespace}", self.core.create_namespaced_config_map, namespace, body)

    def patch_configmap_data(self, namespace: str, name: str, data: dict[str, str | None]) -> None:
        """Merge keys into a ConfigMap's data (a None value removes the key)."""
        self.call(f"patch configmap {namespace}/{name}", self.core.patch_namespaced_config_map, name, namespace,
                  {"data": data}, _content_type="application/merge-patch+json")

    def list_configmaps(self, namespace: str, labels: dict[str, str] | None = None) -> list[k8s.V1ConfigMap]:
        """ConfigMaps in a namespace matching labels."""
        return list(self.call(f"list configmaps in {namespace}", self.core.list_namespaced_config_map, namespace,
                              label_selector=label_selector(labels)).items)

    def delete_configmaps(self, namespace: str, labels: dict[str, str]) -> int:
        """Delete every ConfigMap of a namespace matching labels in one call (deletecollection); how many went."""
        result = self.call(f"delete configmaps {label_selector(labels)} in {namespace}",
                           self.core.delete_collection_namespaced_config_map, namespace,
                           label_selector=label_selector(labels))
        return len(getattr(result, "items", None) or [])

    def delete_configmap(self, namespace: str, name: str) -> bool:
        """Delete a ConfigMap (False if already gone)."""
        return self._gone_ok(f"delete configmap {namespace}/{name}", self.core.delete_namespaced_config_map,
                             name, namespace)

    def read_network_policy(self, namespace: str, name: str) -> k8s.V1NetworkPolicy:
        """One NetworkPolicy."""
        return self.call(f"get networkpolicy {namespace}/{name}", self.net.read_namespaced_network_policy,
                         name, namespace)

    def create_network_policy(self, namespace: str, body: Manifest) -> None:
        """Create a NetworkPolicy."""
        self.call(f"create networkpolicy in {namespace}", self.net.create_namespaced_network_policy, namespace, body)

    def delete_network_policy(self, namespace: str, name: str) -> bool:
        """Delete a NetworkPolicy (False if already gone)."""
        return self._gone_ok(f"delete networkpolicy {namespace}/{name}", self.net.delete_namespaced_network_policy,
                             name, namespace)

    # -- API priority and fairness ----------------------------------------------------------------------------

    def create_flowschema(self, body: Manifest) -> None:
        """Create a FlowSchema."""
        self.call("create flowschema", self.flow.create_flow_schema, body)

    def create_priority_level(self, body: Manifest) -> None:
        """Create a PriorityLevelConfiguration."""
        self.call("create prioritylevelconfiguration", self.flow.create_priority_level_configuration, body)

    def flowschema_names(self) -> list[str]:
        """Names of all FlowSchemas."""
        return [str(fs.metadata.name) for fs in self.call("list flowschemas", self.flow.list_flow_schema).items
                if fs.metadata]

    def priority_level_names(self) -> list[str]:
        """Names of all PriorityLevelConfigurations."""
        return [str(p.metadata.name) for p in
                self.call("list prioritylevelconfigurations", self.flow.list_priority_level_configuration).items
                if p.metadata]

    def delete_flowschema(self, name: str) -> bool:
        """Delete a FlowSchema (False if already gone)."""
        return self._gone_ok(f"delete flowschema {name}", self.flow.delete_flow_schema, name)

    def delete_priority_level(self, name: str) -> bool:
        """Delete a PriorityLevelConfiguration (False if already gone)."""
        return self._gone_ok(f"delete prioritylevelconfiguration {name}",
                             self.flow.delete_priority_level_configuration, name)

    # -- leases ------------------------------------------------------------------------------------------------

    def read_lease(self, namespace: str, name: str) -> k8s.V1Lease:
        """One Lease."""
        return self.call(f"get lease {namespace}/{name}", self.coord.read_namespaced_lease, name, namespace)

    def create_lease(self, namespace: str, body: Manifest) -> None:
        """Create a Lease (Conflict if it exists)."""
        self.call(f"create lease in {namespace}", self.coord.create_namespaced_lease, namespace, body)

    def replace_lease(self, namespace: str, name: str, body: Manifest) -> None:
        """Replace a Lease (Conflict if its resourceVersion moved on)."""
        self.call(f"replace lease {namespace}/{name}", self.coord.replace_namespaced_lease, name, namespace, body)

    def delete_lease(self, namespace: str, name: str) -> bool:
        """Delete a Lease (False if already gone)."""
        return self._gone_ok(f"delete lease {namespace}/{name}", self.coord.delete_namespaced_lease, name, namespace)

    # -- events ------------------------------------------------------------------------------------------------

    def create_event(self, namespace: str, body: Manifest) -> None:
        """Record a core/v1 Event."""
        self.call(f"create event in {namespace}", self.core.create_namespaced_event, namespace, body)
