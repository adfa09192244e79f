"""Discovery (legacy format): /api, /apis, /api/v1, /apis/<group>[/<version>], /version.

kubectl asks for aggregated discovery (``as=APIGroupDiscoveryList``) first; answering with plain
``application/json`` makes client-go fall back to these legacy documents, as it does with old servers.
"""

from __future__ import annotations

import platform
from typing import Any

from lab.apiserver import errors
from lab.apiserver.resources import GROUPS, RESOURCES, SUBRESOURCE_KINDS, Resource

Obj = dict[str, Any]
STATUS_VERBS = ["get", "patch", "update"]


def api_versions(host: str) -> Obj:
    """GET /api."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    }


def _group(name: str) -> Obj:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in GROUPS[name]]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def api_groups() -> Obj:
    """GET /apis."""
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(g) for g in GROUPS if g]}


def api_group(name: str) -> Obj:
    """GET /apis/<group>."""
    if name not in GROUPS or not name:
        raise errors.ApiError(404, "the server could not find the requested resource", "NotFound")
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name)}


def _entries(res: Resource) -> list[Obj]:
    main: Obj = {
        "name": res.plural,
        "singularName": res.singular_name,
        "namespaced": res.namespaced,
        "kind": res.kind,
        "verbs": sorted(res.verbs),
        "storageVersionHash": "",
    }
    if res.short_names:
        main["shortNames"] = list(res.short_names)
    if res.categories:
        main["categories"] = list(res.categories)
    out = [main]
    for sub in res.subresources:
        entry: Obj = {
            "name": f"{res.plural}/{sub}",
            "singularName": "",
            "namespaced": res.namespaced,
            "kind": res.kind,
            "verbs": STATUS_VERBS,
        }
        if sub in SUBRESOURCE_KINDS:
            group, version, kind = SUBRESOURCE_KINDS[sub]
            entry["kind"] = kind
            if group:
                entry.update(group=group, version=version)
            entry["verbs"] = ["create"] if sub in ("eviction", "binding") else STATUS_VERBS
        out.append(entry)
    return out


def resource_list(group: str, version: str) -> Obj:
    """GET /api/v1 or /apis/<group>/<version>."""
    if group not in GROUPS or version not in GROUPS[group]:
        raise errors.ApiError(404, "the server could not find the requested resource", "NotFound")
    resources = [e for r in RESOURCES if r.group == group and r.version == version for e in _entries(r)]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def version_info(git_version: str) -> Obj:
    """GET /version."""
    major, minor = git_version.lstrip("v").split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": f"python{platform.python_version()}",
        "compiler": "cpython",
        "platform": "linux/amd64",
    }


def route(path: str, host: str, git_version: str) -> Obj | None:
    """The discovery document for a path, or None when the path is not a discovery path."""
    parts = [p for p in path.split("/") if p]
    if parts == ["api"]:
        return api_versions(host)
    if parts == ["api", "v1"]:
        return resource_list("", "v1")
    if parts == ["apis"]:
        return api_groups()
    if len(parts) == 2 and parts[0] == "apis":
        return api_group(parts[1])
    if len(parts) == 3 and parts[0] == "apis":
        return resource_list(parts[1], parts[2])
    if parts == ["version"]:
        return version_info(git_version)
    return None
