"""Resource request handlers: get, list, create, update, patch, delete, deletecollection."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from lab.apiserver import errors, reviews, routing, selectors, subresources, tables, watch
from lab.apiserver.apf_match import RequestInfo
from lab.apiserver.patch import APPLY, apply_patch
from lab.apiserver.resources import REVIEWS, Resource, lookup
from lab.apiserver.server import Server, decode_object, json_response
from lab.apiserver.store import Obj


def resolve(info: RequestInfo) -> Resource:
    """The resource a request addresses, or 404."""
    resource = lookup(info.api_group, info.api_version, info.resource)
    if resource is None:
        raise errors.ApiError(404, "the server could not find the requested resource", "NotFound")
    if info.subresource and info.subresource not in resource.subresources:
        raise errors.ApiError(404, "the server could not find the requested resource", "NotFound")
    return resource


async def read_body(request: web.Request) -> Obj:
    """The decoded JSON (or YAML) request body; 400 if malformed."""
    raw = await request.read()
    if raw and "protobuf" in request.headers.get("Content-Type", ""):
        raise errors.ApiError(415, "the lab API server accepts JSON bodies only", "UnsupportedMediaType")
    return decode_object(raw)


def _int(query: Any, name: str) -> int:
    value = query.get(name)
    if not value:
        return 0
    try:
        return int(value)
    except ValueError as exc:
        raise errors.bad_request(f"invalid {name}: {value!r}") from exc


async def handle(server: Server, request: web.Request, info: RequestInfo) -> web.StreamResponse:
    """Serve one resource request."""
    resource = resolve(info)
    if info.verb not in resource.verbs:
        raise errors.method_not_allowed()
    if resource.plural in REVIEWS:
        return await reviews.handle(server, request, info, resource)
    if info.subresource in ("scale", "eviction", "binding"):
        return await subresources.handle(server, request, info, resource)
    ns = info.namespace if resource.namespaced else ""
    reg = server.registry
    query = request.query
    verb = info.verb
    dry = routing.dry_run(query)
    if verb == "get":
        return tables.respond(request, resource, reg.get(resource, ns, info.name), server.store.rv)
    if verb == "list":
        result = reg.list(
            resource, ns or None, selectors.from_query(query), _int(query, "limit"), query.get("continue", "")
        )
        return await tables.respond_list(request, resource, result)
    if verb == "watch":
        return await watch.serve(server, request, info, resource)
    if verb == "create":
        if info.name:
            raise errors.method_not_allowed()
        return json_response(reg.create(resource, ns, await read_body(request), dry), 201)
    if verb == "update":
        body = await read_body(request)
        return json_response(reg.update(resource, ns, info.name, body, info.subresource, dry))
    if verb == "patch":
        ctype = request.headers.get("Content-Type", "")
        raw = await request.read()
        current = reg.table_get(resource, ns, info.name)
        if current is None and ctype.startswith(APPLY) and not info.subresource:
            # Server-side apply creates what does not exist yet.
            created = reg.create(resource, ns, apply_patch({}, ctype, raw), dry)
            return json_response(created, 201)
        if current is None:
            raise errors.not_found(resource.plural, resource.group, info.name)
        patched = apply_patch(current, ctype, raw)
        return json_response(reg.patch(resource, ns, info.name, patched, info.subresource, dry))
    if verb == "delete":
        return _delete(server, resource, ns, info.name, await read_body(request), query)
    if verb == "deletecollection":
        items = reg.list(resource, ns or None, selectors.from_query(query)).items
        deleted = [reg.delete(resource, ns, o["metadata"]["name"], dry_run=dry) for o in items]
        body = {
            "kind": f"{resource.kind}List",
            "apiVersion": resource.api_version,
            "metadata": {"resourceVersion": str(server.store.rv)},
            "items": deleted,
        }
        return json_response(body)
    raise errors.method_not_allowed()


def _delete(server: Server, resource: Resource, ns: str, name: str, options: Obj, query: Any) -> web.Response:
    policy = options.get("propagationPolicy") or query.get("propagationPolicy") or "Background"
    orphan = policy == "Orphan" or options.get("orphanDependents") is True
    pre = options.get("preconditions") or {}
    current = server.registry.get(resource, ns, name)
    if pre.get("resourceVersion") and pre["resourceVersion"] != current["metadata"]["resourceVersion"]:
        raise errors.conflict(resource.plural, resource.group, name)
    dry = routing.dry_run(query) or "All" in (options.get("dryRun") or [])
    last = server.registry.delete(resource, ns, name, orphan, pre.get("uid") or "", dry)
    return json_response(server.registry.deleted_status(resource, last))
