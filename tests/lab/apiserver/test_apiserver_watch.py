"""Watch contract tests with the official Python client: event types, selectors, timeouts, 410, bookmarks."""

from __future__ import annotations

import json
import threading
import urllib.request

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from lab.apiserver.testing import RunningApiServer, poll_until

META = client.V1ObjectMeta


def _cm(name: str, labels: dict[str, str] | None = None) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=META(name=name, labels=labels), data={"v": "0"})


def test_watch_replays_added_modified_deleted(core: client.CoreV1Api, namespace: str) -> None:
    """Watching from a resourceVersion replays ADDED, MODIFIED and DELETED, then ends at timeoutSeconds."""
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, _cm("w"))
    core.patch_namespaced_config_map("w", namespace, {"data": {"v": "1"}})
    core.delete_namespaced_config_map("w", namespace)
    events = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            core.list_namespaced_config_map, namespace, resource_version=start, timeout_seconds=1
        )
    ]
    assert events == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


def test_watch_live_events_and_initial_list(core: client.CoreV1Api, namespace: str) -> None:
    """A watch without resourceVersion lists existing objects as ADDED, then streams live changes."""
    core.create_namespaced_config_map(namespace, _cm("before"))
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def run() -> None:
        for event in w.stream(core.list_namespaced_config_map, namespace, timeout_seconds=10):
            seen.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                w.stop()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    poll_until(lambda: ("ADDED", "before") in seen)
    core.create_namespaced_config_map(namespace, _cm("live"))
    core.delete_namespaced_config_map("live", namespace)
    thread.join(timeout=15)
    assert seen == [("ADDED", "before"), ("ADDED", "live"), ("DELETED", "live")]


def test_watch_label_selector_transitions(core: client.CoreV1Api, namespace: str) -> None:
    """An object leaving a watch's label selector is reported DELETED, entering it ADDED."""
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, _cm("x", {"team": "a"}))
    core.patch_namespaced_config_map("x", namespace, {"metadata": {"labels": {"team": "b"}}})
    core.patch_namespaced_config_map("x", namespace, {"metadata": {"labels": {"team": "a"}}})
    events = [
        e["type"]
        for e in watch.Watch().stream(
            core.list_namespaced_config_map,
            namespace,
            label_selector="team=a",
            resource_version=start,
            timeout_seconds=1,
        )
    ]
    assert events == ["ADDED", "DELETED", "ADDED"]


def test_watch_field_selector_by_name(core: client.CoreV1Api, namespace: str) -> None:
    """fieldSelector metadata.name narrows a watch to one object."""
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, _cm("one"))
    core.create_namespaced_config_map(namespace, _cm("two"))
    names = [
        e["object"].metadata.name
        for e in watch.Watch().stream(
            core.list_namespaced_config_map,
            namespace,
            field_selector="metadata.name=two",
            resource_version=start,
            timeout_seconds=1,
        )
    ]
    assert names == ["two"]


def test_watch_too_old_resource_version_is_410(core: client.CoreV1Api, namespace: str) -> None:
    """A resourceVersion older than the watch history ring (500 events here) fails with 410."""
    old = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, _cm("churn"))
    for n in range(520):
        core.patch_namespaced_config_map("churn", namespace, {"data": {"v": str(n)}})
    with pytest.raises(ApiException) as err:
        list(
            watch.Watch().stream(
                core.list_namespaced_config_map, namespace, resource_version=old, timeout_seconds=1
            )
        )
    assert err.value.status == 410


def test_watch_error_event_shape(api: RunningApiServer, core: client.CoreV1Api, namespace: str) -> None:
    """The 410 arrives as an ERROR watch event holding an Expired Status, like the real server."""
    core.create_namespaced_config_map(namespace, _cm("churn2"))
    for n in range(520):
        core.patch_namespaced_config_map("churn2", namespace, {"data": {"v": str(n)}})
    req = urllib.request.Request(
        f"{api.url}/api/v1/namespaces/{namespace}/configmaps?watch=true&resourceVersion=2&timeoutSeconds=1",
        headers={"Authorization": f"Bearer {api.admin_token}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        event = json.loads(resp.readline())
    assert event["type"] == "ERROR"
    assert (event["object"]["kind"], event["object"]["code"], event["object"]["reason"]) == (
        "Status",
        410,
        "Expired",
    )


def test_watch_bookmarks(api: RunningApiServer, core: client.CoreV1Api, namespace: str) -> None:
    """allowWatchBookmarks yields BOOKMARK events carrying the current resourceVersion."""
    req = urllib.request.Request(
        f"{api.url}/api/v1/namespaces/{namespace}/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=2",
        headers={"Authorization": f"Bearer {api.admin_token}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        lines = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    bookmarks = [e for e in lines if e["type"] == "BOOKMARK"]
    assert bookmarks and int(bookmarks[0]["object"]["metadata"]["resourceVersion"]) > 0
    assert bookmarks[0]["object"]["kind"] == "Pod"


def test_legacy_watch_path(api: RunningApiServer, core: client.CoreV1Api, namespace: str) -> None:
    """/api/v1/watch/namespaces/<ns>/configmaps streams like ?watch=true."""
    core.create_namespaced_config_map(namespace, _cm("legacy"))
    req = urllib.request.Request(
        f"{api.url}/api/v1/watch/namespaces/{namespace}/configmaps?timeoutSeconds=1",
        headers={"Authorization": f"Bearer {api.admin_token}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        first = json.loads(resp.readline())
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "legacy")


def test_watch_single_object_url(api: RunningApiServer, core: client.CoreV1Api, namespace: str) -> None:
    """?watch=true on an object's own URL streams only that object."""
    core.create_namespaced_config_map(namespace, _cm("other"))
    core.create_namespaced_config_map(namespace, _cm("mine"))
    req = urllib.request.Request(
        f"{api.url}/api/v1/namespaces/{namespace}/configmaps/mine?watch=true&timeoutSeconds=1",
        headers={"Authorization": f"Bearer {api.admin_token}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        names = [json.loads(line)["object"]["metadata"]["name"] for line in resp.read().splitlines() if line]
    assert names == ["mine"]
