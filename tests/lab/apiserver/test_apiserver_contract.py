"""Contract tests with the official Python client: CRUD, errors, selectors, pagination, patches."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from lab.apiserver.testing import RunningApiServer

META = client.V1ObjectMeta


def _status(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def _pod(name: str, node: str = "node-a", labels: dict[str, str] | None = None) -> client.V1Pod:
    return client.V1Pod(
        metadata=META(name=name, labels=labels or {}),
        spec=client.V1PodSpec(node_name=node, containers=[client.V1Container(name="c", image="lab/pause")]),
    )


def _deployment(name: str, replicas: int = 1) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=META(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=META(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="lab/pause")]),
            ),
        ),
    )


def test_pod_crud_roundtrip(core: client.CoreV1Api, namespace: str) -> None:
    """A pod can be created, read, replaced, status-patched and deleted, with resourceVersions rising."""
    created = core.create_namespaced_pod(namespace, _pod("p1"))
    assert created.metadata.uid and created.status.phase == "Pending"
    got = core.read_namespaced_pod("p1", namespace)
    assert got.metadata.resource_version == created.metadata.resource_version
    got.metadata.labels = {"x": "y"}
    replaced = core.replace_namespaced_pod("p1", namespace, got)
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    status = core.patch_namespaced_pod_status("p1", namespace, {"status": {"phase": "Running"}})
    assert status.status.phase == "Running" and status.metadata.labels == {"x": "y"}
    deleted = core.delete_namespaced_pod("p1", namespace)
    assert deleted is not None
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("p1", namespace)
    assert err.value.status == 404


@pytest.mark.parametrize("kind", ["service", "config_map", "endpoints", "secret", "service_account", "event"])
def test_namespaced_core_kinds_crud(core: client.CoreV1Api, namespace: str, kind: str) -> None:
    """Each namespaced core kind supports create, read, list, patch and delete."""
    bodies: dict[str, Any] = {
        "service": client.V1Service(
            metadata=META(name="o"),
            spec=client.V1ServiceSpec(selector={"app": "o"}, ports=[client.V1ServicePort(port=80)]),
        ),
        "config_map": client.V1ConfigMap(metadata=META(name="o"), data={"a": "1"}),
        "endpoints": client.V1Endpoints(metadata=META(name="o"), subsets=[]),
        "secret": client.V1Secret(metadata=META(name="o"), string_data={"a": "1"}),
        "service_account": client.V1ServiceAccount(metadata=META(name="o")),
        "event": client.CoreV1Event(
            metadata=META(name="o"),
            involved_object=client.V1ObjectReference(kind="Pod", name="p", namespace=namespace),
            reason="Test",
            message="hello",
        ),
    }
    getattr(core, f"create_namespaced_{kind}")(namespace, bodies[kind])
    assert getattr(core, f"read_namespaced_{kind}")("o", namespace).metadata.name == "o"
    assert len(getattr(core, f"list_namespaced_{kind}")(namespace).items) == 1
    patched = getattr(core, f"patch_namespaced_{kind}")("o", namespace, {"metadata": {"labels": {"p": "1"}}})
    assert patched.metadata.labels == {"p": "1"}
    getattr(core, f"delete_namespaced_{kind}")("o", namespace)
    assert getattr(core, f"list_namespaced_{kind}")(namespace).items == []


def test_service_gets_cluster_ip(core: client.CoreV1Api, namespace: str) -> None:
    """A ClusterIP service is given a cluster IP, a headless one keeps None."""
    svc = core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=META(name="web"), spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)])
        ),
    )
    headless = core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=META(name="hl"),
            spec=client.V1ServiceSpec(cluster_ip="None", ports=[client.V1ServicePort(port=80)]),
        ),
    )
    assert svc.spec.cluster_ip.startswith("10.96.") and headless.spec.cluster_ip == "None"


def test_cluster_scoped_node_and_status(core: client.CoreV1Api) -> None:
    """Nodes are cluster-scoped; status is written only through the status subresource."""
    core.create_node(client.V1Node(metadata=META(name="crud-node")))
    try:
        core.patch_node("crud-node", {"status": {"capacity": {"cpu": "8"}}, "spec": {"unschedulable": True}})
        node = core.read_node("crud-node")
        assert node.spec.unschedulable is True and not (node.status.capacity or {})
        core.patch_node_status("crud-node", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        assert core.read_node("crud-node").status.conditions[0].type == "Ready"
    finally:
        core.delete_node("crud-node")


def test_other_groups_crud(api_client: client.ApiClient, namespace: str) -> None:
    """Leases, deployments, daemonsets and network policies support the usual verbs."""
    coord = client.CoordinationV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    net = client.NetworkingV1Api(api_client)
    lease = coord.create_namespaced_lease(
        namespace,
        client.V1Lease(
            metadata=META(name="l"), spec=client.V1LeaseSpec(holder_identity="me", lease_duration_seconds=40)
        ),
    )
    lease.spec.renew_time = "2026-01-01T00:00:00.000000Z"
    assert coord.replace_namespaced_lease("l", namespace, lease).spec.holder_identity == "me"
    dep = apps.create_namespaced_deployment(namespace, _deployment("web", 2))
    assert dep.metadata.generation == 1
    dep2 = apps.patch_namespaced_deployment("web", namespace, {"spec": {"replicas": 3}})
    assert dep2.metadata.generation == 2 and dep2.spec.replicas == 3
    ds_body = _deployment("agent")
    ds = client.V1DaemonSet(
        metadata=ds_body.metadata,
        spec=client.V1DaemonSetSpec(selector=ds_body.spec.selector, template=ds_body.spec.template),
    )
    apps.create_namespaced_daemon_set(namespace, ds)
    apps.patch_namespaced_daemon_set_status("agent", namespace, {"status": {"numberReady": 2}})
    assert apps.read_namespaced_daemon_set("agent", namespace).status.number_ready == 2
    net.create_namespaced_network_policy(
        namespace,
        client.V1NetworkPolicy(
            metadata=META(name="deny"), spec=client.V1NetworkPolicySpec(pod_selector=client.V1LabelSelector())
        ),
    )
    assert [p.metadata.name for p in net.list_namespaced_network_policy(namespace).items] == ["deny"]
    apps.delete_namespaced_deployment("web", namespace)
    assert apps.list_namespaced_deployment(namespace).items == []


def test_flowcontrol_objects_readable(api_client: client.ApiClient) -> None:
    """The default APF configuration objects are served through the API."""
    fc = client.FlowcontrolApiserverV1Api(api_client)
    levels = {p.metadata.name: p for p in fc.list_priority_level_configuration().items}
    assert {
        "exempt",
        "system",
        "node-high",
        "leader-election",
        "workload-high",
        "workload-low",
        "global-default",
        "catch-all",
    } <= set(levels)
    assert levels["workload-low"].spec.limited.nominal_concurrency_shares == 100
    schemas = {s.metadata.name: s for s in fc.list_flow_schema().items}
    assert schemas["service-accounts"].spec.priority_level_configuration.name == "workload-low"


def test_not_found_status_shape(core: client.CoreV1Api, api_client: client.ApiClient, namespace: str) -> None:
    """404 bodies carry reason NotFound, the name and the resource (and group for non-core)."""
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("missing", namespace)
    body = _status(err.value)
    assert (err.value.status, body["kind"], body["status"], body["reason"], body["code"]) == (
        404,
        "Status",
        "Failure",
        "NotFound",
        404,
    )
    assert body["details"] == {"name": "missing", "kind": "pods"}
    assert body["message"] == 'pods "missing" not found'
    with pytest.raises(ApiException) as err:
        client.AppsV1Api(api_client).read_namespaced_deployment("missing", namespace)
    assert _status(err.value)["details"] == {"name": "missing", "group": "apps", "kind": "deployments"}


def test_conflict_and_already_exists(core: client.CoreV1Api, namespace: str) -> None:
    """Creating twice is 409 AlreadyExists; a stale resourceVersion on update is 409 Conflict."""
    first = core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=META(name="c"), data={}))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=META(name="c")))
    assert (err.value.status, _status(err.value)["reason"]) == (409, "AlreadyExists")
    core.patch_namespaced_config_map("c", namespace, {"data": {"a": "1"}})
    first.data = {"b": "2"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("c", namespace, first)
    body = _status(err.value)
    assert (err.value.status, body["reason"], body["details"]["name"]) == (409, "Conflict", "c")
    assert "the object has been modified" in body["message"]


def test_invalid_names_are_422(core: client.CoreV1Api, namespace: str) -> None:
    """A bad DNS-1123 name or a missing name is 422 Invalid with causes."""
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=META(name="Bad_Name")))
    body = _status(err.value)
    assert (err.value.status, body["reason"], body["details"]["kind"]) == (422, "Invalid", "ConfigMap")
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=META()))
    assert err.value.status == 422 and "name or generateName is required" in _status(err.value)["message"]


def test_generate_name(core: client.CoreV1Api, namespace: str) -> None:
    """generateName makes distinct names with the prefix."""
    names = {
        core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=META(generate_name="gen-"))
        ).metadata.name
        for _ in range(3)
    }
    assert len(names) == 3 and all(n.startswith("gen-") and len(n) == 9 for n in names)


def test_create_in_missing_namespace_is_404(core: client.CoreV1Api) -> None:
    """Creating in a namespace that does not exist is 404 for the namespace."""
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("no-such-ns", client.V1ConfigMap(metadata=META(name="c")))
    assert err.value.status == 404 and _status(err.value)["details"]["kind"] == "namespaces"


def test_label_and_field_selectors(core: client.CoreV1Api, namespace: str) -> None:
    """Label (=, !=, in, notin, exists, !exists) and field selectors filter lists, across namespaces too."""
    core.create_namespaced_pod(namespace, _pod("a", "node-a", {"app": "web", "tier": "fe"}))
    core.create_namespaced_pod(namespace, _pod("b", "node-b", {"app": "web"}))
    core.create_namespaced_pod(namespace, _pod("c", "node-b", {"app": "db"}))
    core.patch_namespaced_pod_status("c", namespace, {"status": {"phase": "Running"}})

    def names(**kw: Any) -> list[str]:
        return sorted(p.metadata.name for p in core.list_namespaced_pod(namespace, **kw).items)

    assert names(label_selector="app=web") == ["a", "b"]
    assert names(label_selector="app!=web") == ["c"]
    assert names(label_selector="app in (db, cache)") == ["c"]
    assert names(label_selector="app notin (db)") == ["a", "b"]
    assert names(label_selector="tier") == ["a"]
    assert names(label_selector="!tier,app==web") == ["b"]
    assert names(field_selector="spec.nodeName=node-b") == ["b", "c"]
    assert names(field_selector="status.phase=Running") == ["c"]
    assert names(field_selector="metadata.name!=a,spec.nodeName=node-b") == ["b", "c"]
    everywhere = core.list_pod_for_all_namespaces(field_selector=f"metadata.namespace={namespace}")
    assert sorted(p.metadata.name for p in everywhere.items) == ["a", "b", "c"]


def test_limit_and_continue(core: client.CoreV1Api, namespace: str) -> None:
    """limit/continue pages through a list in name order with remainingItemCount."""
    for n in range(7):
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=META(name=f"cm-{n}")))
    page = core.list_namespaced_config_map(namespace, limit=3)
    seen = [c.metadata.name for c in page.items]
    assert page.metadata.remaining_item_count == 4 and page.metadata._continue
    while page.metadata._continue:
        page = core.list_namespaced_config_map(namespace, limit=3, _continue=page.metadata._continue)
        seen += [c.metadata.name for c in page.items]
    assert seen == [f"cm-{n}" for n in range(7)]


def test_patch_types(core: client.CoreV1Api, api_client: client.ApiClient, namespace: str) -> None:
    """Strategic merge keeps other containers, merge patch replaces lists, JSON patch edits paths."""
    apps = client.AppsV1Api(api_client)
    dep = _deployment("web")
    dep.spec.template.spec.containers.append(client.V1Container(name="side", image="lab/pause"))
    apps.create_namespaced_deployment(namespace, dep)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "lab/model-server"}]}}}}
    out = apps.patch_namespaced_deployment("web", namespace, patch)  # strategic by default
    assert [(c.name, c.image) for c in out.spec.template.spec.containers] == [
        ("c", "lab/model-server"),
        ("side", "lab/pause"),
    ]
    api_client.set_default_header("Content-Type", "application/merge-patch+json")
    try:
        out = apps.patch_namespaced_deployment("web", namespace, patch)
    finally:
        api_client.default_headers.pop("Content-Type", None)
    assert [c.name for c in out.spec.template.spec.containers] == ["c"]
    ops = [
        {"op": "replace", "path": "/spec/replicas", "value": 4},
        {"op": "add", "path": "/metadata/labels/extra", "value": "yes"},
    ]
    out = apps.patch_namespaced_deployment("web", namespace, ops)  # a list body is sent as json-patch
    assert out.spec.replicas == 4 and out.metadata.labels["extra"] == "yes"


def test_scale_subresource(api_client: client.ApiClient, namespace: str) -> None:
    """The scale subresource reads and writes a deployment's replicas."""
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, _deployment("web", 2))
    scale = apps.read_namespaced_deployment_scale("web", namespace)
    assert (scale.kind, scale.spec.replicas, scale.status.selector) == ("Scale", 2, "app=web")
    apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 5}})
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 5
    scale = apps.read_namespaced_deployment_scale("web", namespace)
    scale.spec.replicas = 1
    apps.replace_namespaced_deployment_scale("web", namespace, scale)
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 1


def test_eviction_deletes_pod(core: client.CoreV1Api, namespace: str) -> None:
    """POST pods/<name>/eviction deletes the pod."""
    core.create_namespaced_pod(namespace, _pod("victim"))
    body = client.V1Eviction(metadata=META(name="victim", namespace=namespace))
    core.create_namespaced_pod_eviction("victim", namespace, body)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("victim", namespace)
    assert err.value.status == 404


def test_owner_cascade_and_namespace_delete(
    core: client.CoreV1Api, api_client: client.ApiClient, namespace: str
) -> None:
    """Deleting a deployment deletes pods it owns; deleting a namespace deletes its objects."""
    apps = client.AppsV1Api(api_client)
    dep = apps.create_namespaced_deployment(namespace, _deployment("web"))
    pod = _pod("owned")
    pod.metadata.owner_references = [
        client.V1OwnerReference(api_version="apps/v1", kind="Deployment", name="web", uid=dep.metadata.uid)
    ]
    core.create_namespaced_pod(namespace, pod)
    core.create_namespaced_pod(namespace, _pod("free"))
    apps.delete_namespaced_deployment("web", namespace)
    assert [p.metadata.name for p in core.list_namespaced_pod(namespace).items] == ["free"]
    core.create_namespace(client.V1Namespace(metadata=META(name=f"{namespace}-x")))
    core.create_namespaced_pod(f"{namespace}-x", _pod("inside"))
    core.delete_namespace(f"{namespace}-x")
    assert core.list_pod_for_all_namespaces(field_selector=f"metadata.namespace={namespace}-x").items == []


def test_token_review(api: RunningApiServer, api_client: client.ApiClient) -> None:
    """TokenReview authenticates lab tokens and refuses unknown ones."""
    auth = client.AuthenticationV1Api(api_client)
    review = auth.create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=api.runner_token))
    )
    assert review.status.authenticated is True
    assert review.status.user.username == "gameday-runner"
    assert "gameday:runners" in review.status.user.groups
    bad = auth.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token="nope")))
    assert not bad.status.authenticated


def test_discovery_and_version(api_client: client.ApiClient) -> None:
    """/version says v1.32 and discovery lists short names and subresources."""
    version = client.VersionApi(api_client).get_code()
    assert version.git_version.startswith("v1.32.")
    resources = {r.name: r for r in client.CoreV1Api(api_client).get_api_resources().resources}
    assert resources["pods"].short_names == ["po"] and "pods/eviction" in resources
    assert resources["pods/eviction"].group == "policy"
    apps = {r.name: r for r in client.AppsV1Api(api_client).get_api_resources().resources}
    assert apps["deployments"].short_names == ["deploy"] and apps["deployments/scale"].kind == "Scale"


def test_deletecollection_with_selector(core: client.CoreV1Api, namespace: str) -> None:
    """deletecollection removes only the objects matching its label selector."""
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=META(name=name, labels={"team": team}))
        )
    core.delete_collection_namespaced_config_map(namespace, label_selector="team=x")
    assert [c.metadata.name for c in core.list_namespaced_config_map(namespace).items] == ["c"]


def test_orphan_propagation_keeps_dependents(
    core: client.CoreV1Api, api_client: client.ApiClient, namespace: str
) -> None:
    """propagationPolicy=Orphan deletes the owner but leaves its pods."""
    apps = client.AppsV1Api(api_client)
    dep = apps.create_namespaced_deployment(namespace, _deployment("web"))
    pod = _pod("owned")
    pod.metadata.owner_references = [
        client.V1OwnerReference(api_version="apps/v1", kind="Deployment", name="web", uid=dep.metadata.uid)
    ]
    core.create_namespaced_pod(namespace, pod)
    apps.delete_namespaced_deployment("web", namespace, propagation_policy="Orphan")
    assert [p.metadata.name for p in core.list_namespaced_pod(namespace).items] == ["owned"]


def test_pod_binding(core: client.CoreV1Api, namespace: str) -> None:
    """POST pods/<name>/binding sets spec.nodeName once; binding a bound pod is 409."""
    pod = _pod("unbound")
    pod.spec.node_name = None
    core.create_namespaced_pod(namespace, pod)
    target = client.V1ObjectReference(api_version="v1", kind="Node", name="node-b")
    body = client.V1Binding(metadata=META(name="unbound"), target=target)
    core.create_namespaced_pod_binding("unbound", namespace, body, _preload_content=False)
    assert core.read_namespaced_pod("unbound", namespace).spec.node_name == "node-b"
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod_binding("unbound", namespace, body, _preload_content=False)
    assert err.value.status == 409


def test_dry_run_stores_nothing(core: client.CoreV1Api, namespace: str) -> None:
    """dryRun=All answers create/patch/delete/eviction without changing storage."""
    made = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=META(name="d")), dry_run="All"
    )
    assert made.metadata.name == "d"
    assert core.list_namespaced_config_map(namespace).items == []
    core.create_namespaced_pod(namespace, _pod("keep"))
    patched = core.patch_namespaced_pod(
        "keep", namespace, {"metadata": {"labels": {"x": "1"}}}, dry_run="All"
    )
    assert patched.metadata.labels == {"x": "1"}
    core.delete_namespaced_pod("keep", namespace, dry_run="All")
    core.create_namespaced_pod_eviction(
        "keep", namespace, client.V1Eviction(metadata=META(name="keep")), dry_run="All"
    )
    assert not core.read_namespaced_pod("keep", namespace).metadata.labels
