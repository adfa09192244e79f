"""Applying the lab's bootstrap manifests and checking the cluster's state, synchronously over REST."""

from __future__ import annotations

from importlib import resources as pkg_resources
from pathlib import Path
from typing import Any

import requests
import yaml

from lab.apiserver.resources import RESOURCES, Resource
from lab.runtime.client import api_path
from lab.runtime.errors import ApiStatusError, LabError

Obj = dict[str, Any]
BY_KIND: dict[tuple[str, str], Resource] = {(r.api_version, r.kind): r for r in RESOURCES}


def manifest_files() -> list[Path]:
    """The bootstrap manifests shipped in lab/manifests, in apply order."""
    root = Path(str(pkg_resources.files("lab") / "manifests"))
    return sorted(root.glob("*.yaml"))


def load_documents(paths: list[Path], replace: dict[str, str] | None = None) -> list[Obj]:
    """Every YAML document in the files, in order (after plain-text replacements, e.g. of addresses)."""
    docs: list[Obj] = []
    for path in paths:
        text = path.read_text()
        for old, new in (replace or {}).items():
            text = text.replace(old, new)
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


class Rest:
    """A tiny synchronous REST client (bearer token)."""

    def __init__(self, url: str, token: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def call(self, method: str, path: str, body: Obj | None = None) -> Obj:
        """One call; ApiStatusError on an HTTP error."""
        resp = self.session.request(method, self.url + path, json=body, timeout=self.timeout)
        if resp.status_code >= 400:
            raise ApiStatusError(resp.status_code, resp.text[:300])
        result: Obj = resp.json() if resp.content else {}
        return result

    def items(self, path: str) -> list[Obj]:
        """The items of a LIST."""
        return list(self.call("GET", path).get("items") or [])

    def close(self) -> None:
        """Close the session."""
        self.session.close()


def object_path(obj: Obj) -> tuple[str, str]:
    """(collection path, object path) of a manifest object."""
    res = BY_KIND.get((obj.get("apiVersion", ""), obj.get("kind", "")))
    if res is None:
        raise LabError(f"unknown kind {obj.get('apiVersion')}/{obj.get('kind')}")
    meta = obj.get("metadata") or {}
    ns = (meta.get("namespace") or "default") if res.namespaced else None
    coll = api_path(res.group, res.version, res.plural, ns)
    return coll, f"{coll}/{meta['name']}"


def apply(rest: Rest, obj: Obj) -> Obj:
    """Create an object, or replace it when it exists (keeping its resourceVersion)."""
    coll, path = object_path(obj)
    try:
        return rest.call("POST", coll, obj)
    except ApiStatusError as err:
        if err.code != 409:
            raise
    current = rest.call("GET", path)
    body = {**obj, "metadata": {**obj.get("metadata", {}),
                                "resourceVersion": current["metadata"]["resourceVersion"]}}
    if obj.get("kind") == "Namespace":
        return current
    return rest.call("PUT", path, body)


def deployments_available(rest: Rest) -> list[str]:
    """Names (ns/name) of Deployments not yet available with all replicas ready and updated."""
    waiting = []
    for dep in rest.items(api_path("apps", "v1", "deployments")):
        want = (dep.get("spec") or {}).get("replicas", 1)
        status = dep.get("status") or {}
        done = (status.get("readyReplicas") or 0) >= want and (status.get("updatedReplicas") or 0) >= want \
            and status.get("observedGeneration") == dep["metadata"].get("generation")
        if not done:
            meta = dep["metadata"]
            waiting.append(f"{meta.get('namespace')}/{meta['name']}")
    return waiting


def node_counts(rest: Rest) -> tuple[int, int]:
    """(nodes, Ready nodes)."""
    nodes = rest.items(api_path("", "v1", "nodes"))
    ready = sum(
        1 for n in nodes
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in (n.get("status") or {}).get("conditions") or [])
    )
    return len(nodes), ready


def pod_phases(rest: Rest) -> dict[str, int]:
    """Pod counts by phase."""
    phases: dict[str, int] = {}
    for pod in rest.items(api_path("", "v1", "pods")):
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        phases[phase] = phases.get(phase, 0) + 1
    return phases
