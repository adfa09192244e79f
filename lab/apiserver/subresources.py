"""Subresources with their own kinds: scale (autoscaling/v1 Scale), eviction (policy/v1 Eviction)
and binding (v1 Binding: sets spec.nodeName once, 409 if the pod is already bound)."""

from __future__ import annotations

import msgspec
from aiohttp import web

from lab.apiserver import errors, routing
from lab.apiserver.apf_match import RequestInfo
from lab.apiserver.patch import apply_patch
from lab.apiserver.resources import Resource
from lab.apiserver.server import Server, json_response
from lab.apiserver.store import Obj


def _selector_string(obj: Obj) -> str:
    labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def scale_of(obj: Obj) -> Obj:
    """The autoscaling/v1 Scale view of a deployment or replicaset."""
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": int((obj.get("spec") or {}).get("replicas", 0))},
        "status": {
            "replicas": int((obj.get("status") or {}).get("replicas", 0)),
            "selector": _selector_string(obj),
        },
    }


async def _scale(server: Server, request: web.Request, info: RequestInfo, resource: Resource) -> web.Response:
    reg = server.registry
    current = reg.get(resource, info.namespace, info.name)
    if info.verb == "get":
        return json_response(scale_of(current))
    raw = await request.read()
    if info.verb == "update":
        scale = msgspec.json.decode(raw)
    elif info.verb == "patch":
        scale = apply_patch(scale_of(current), request.headers.get("Content-Type", ""), raw)
    else:
        raise errors.method_not_allowed()
    want_rv = (scale.get("metadata") or {}).get("resourceVersion")
    if want_rv and want_rv != current["metadata"]["resourceVersion"]:
        raise errors.conflict(resource.plural, resource.group, info.name)
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        raise errors.invalid(
            "Scale",
            "autoscaling",
            info.name,
            [("FieldValueInvalid", "spec.replicas", f"Invalid value: {replicas}: must be >= 0")],
        )
    new = reg.copy(current)
    new["spec"]["replicas"] = replicas
    return json_response(
        scale_of(reg.update(resource, info.namespace, info.name, new, dry_run=routing.dry_run(request.query)))
    )


async def _evict(server: Server, request: web.Request, info: RequestInfo, resource: Resource) -> web.Response:
    if info.verb != "create":
        raise errors.method_not_allowed()
    raw = await request.read()
    body: Obj = msgspec.json.decode(raw) if raw else {}
    name = (body.get("metadata") or {}).get("name", info.name)
    if name != info.name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    options = body.get("deleteOptions") or {}
    dry = routing.dry_run(request.query) or "All" in (options.get("dryRun") or [])
    server.registry.delete(resource, info.namespace, info.name, dry_run=dry)
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
    return json_response(status, 201)


async def _bind(server: Server, request: web.Request, info: RequestInfo, resource: Resource) -> web.Response:
    if info.verb != "create":
        raise errors.method_not_allowed()
    raw = await request.read()
    body: Obj = msgspec.json.decode(raw) if raw else {}
    node = (body.get("target") or {}).get("name")
    if not node:
        raise errors.invalid(
            "Binding", "", info.name, [("FieldValueRequired", "target.name", "Required value")]
        )
    current = server.registry.get(resource, info.namespace, info.name)
    bound = (current.get("spec") or {}).get("nodeName")
    if bound:
        raise errors.ApiError(
            409,
            f'Operation cannot be fulfilled on pods/binding "{info.name}": pod {info.name} is already '
            f'assigned to node "{bound}"',
            "Conflict",
            {"name": info.name, "kind": "pods/binding"},
        )
    new = server.registry.copy(current)
    new.setdefault("spec", {})["nodeName"] = node
    server.registry.update(resource, info.namespace, info.name, new, dry_run=routing.dry_run(request.query))
    return json_response(
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201
    )


async def handle(server: Server, request: web.Request, info: RequestInfo, resource: Resource) -> web.Response:
    """Serve scale, eviction and binding requests."""
    try:
        if info.subresource == "scale":
            return await _scale(server, request, info, resource)
        if info.subresource == "binding":
            return await _bind(server, request, info, resource)
        return await _evict(server, request, info, resource)
    except msgspec.DecodeError as exc:
        raise errors.bad_request(f"the object provided is unrecognized or malformed: {exc}") from exc
