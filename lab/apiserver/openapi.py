"""A minimal OpenAPI v3 discovery, just enough for kubectl.

kubectl create/apply looks at ``/openapi/v3`` to learn whether PATCH accepts ``fieldValidation``
(then it validates server-side instead of downloading ``/openapi/v2``). Each group-version document
lists one PATCH operation per resource with its group-version-kind and that parameter, and no
request-body schema, so ``kubectl apply`` computes strategic merge patches from its built-in types.
There are no schemas: ``kubectl explain`` does not work. ``/openapi/v2`` answers 404.
"""

from __future__ import annotations

from typing import Any

from lab.apiserver import errors
from lab.apiserver.resources import GROUPS, RESOURCES

Obj = dict[str, Any]
HASH = "0" * 16


def _prefix(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def root() -> Obj:
    """GET /openapi/v3."""
    paths = {}
    for group, versions in GROUPS.items():
        for version in versions:
            prefix = _prefix(group, version)
            paths[prefix] = {"serverRelativeURL": f"/openapi/v3/{prefix}?hash={HASH}"}
    return {"paths": paths}


def group_version(path: str) -> Obj:
    """GET /openapi/v3/api/v1 or /openapi/v3/apis/<group>/<version>."""
    parts = [p for p in path.split("/") if p][2:]
    if parts[:1] == ["api"] and len(parts) == 2:
        group, version = "", parts[1]
    elif parts[:1] == ["apis"] and len(parts) == 3:
        group, version = parts[1], parts[2]
    else:
        raise errors.ApiError(404, "the server could not find the requested resource", "NotFound")
    if version not in GROUPS.get(group, []):
        raise errors.ApiError(404, "the server could not find the requested resource", "NotFound")
    paths: Obj = {}
    param = {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    for res in RESOURCES:
        if res.group != group or res.version != version:
            continue
        scope = "namespaces/{namespace}/" if res.namespaced else ""
        item = f"/{_prefix(group, version)}/{scope}{res.plural}/{{name}}"
        gvk = {"group": group, "version": version, "kind": res.kind}
        paths[item] = {
            "patch": {
                "operationId": f"patch{res.kind}",
                "parameters": [param],
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.4"},
        "paths": paths,
        "components": {"schemas": {}},
    }


def route(path: str) -> Obj | None:
    """The OpenAPI document for a path under /openapi, or None for other paths."""
    if path.rstrip("/") == "/openapi/v3":
        return root()
    if path.startswith("/openapi/v3/"):
        return group_version(path)
    return None
