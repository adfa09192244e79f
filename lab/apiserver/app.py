"""The aiohttp application: authentication, APF, metrics and routing around the handlers.

Every request: authenticate the bearer token (401 for none/unknown, except the public health and
version paths, and /metrics with ``anonymous_metrics``), classify and queue it with APF (429 when
rejected), run it, and count it in ``apiserver_request_total`` / ``..._duration_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

from aiohttp import web

from lab.apiserver import discovery, errors, handlers, openapi, routing
from lab.apiserver.apf_match import RequestInfo
from lab.apiserver.config import ApiServerConfig
from lab.apiserver.resources import lookup
from lab.apiserver.server import Server, json_response
from lab.apiserver.store import Table
from lab.apiserver.users import UserInfo

log = logging.getLogger(__name__)
SERVER_KEY = web.AppKey("server", Server)
METRIC_VERBS = {
    "get": "GET",
    "list": "LIST",
    "watch": "WATCH",
    "create": "POST",
    "update": "PUT",
    "patch": "PATCH",
    "delete": "DELETE",
    "deletecollection": "DELETECOLLECTION",
}
MUTATING = {"create", "update", "patch", "delete", "deletecollection"}
HEALTH = {"/healthz", "/livez", "/readyz"}


def listed(server: Server, info: RequestInfo) -> tuple[int, Table] | None:
    """How many objects a LIST returns and from which table (None: not a LIST of a known resource)."""
    if info.verb != "list":
        return None
    resource = lookup(info.api_group, info.api_version, info.resource)
    if resource is None:
        return None
    table = server.store.table(resource)
    count = table.size(info.namespace or None if resource.namespaced else None)
    limit = info.extra.get("limit", 0)
    return (min(count, limit) if limit else count), table


def work_width(server: Server, info: RequestInfo) -> int:
    """APF seats a request occupies: LIST ceil(objects/100) clamped to 1..10, everything else 1."""
    found = listed(server, info)
    return 1 if found is None else max(1, min(10, math.ceil(found[0] / 100)))


def served_from_cache(info: RequestInfo, query: Any) -> bool:
    """WATCH, and LIST with a resourceVersion (client-go reflectors send "0"), are served by the watch cache."""
    return info.verb == "watch" or (info.verb == "list" and bool(query.get("resourceVersion")))


async def _route(server: Server, request: web.Request, info: RequestInfo) -> web.StreamResponse:
    path = request.path
    if path in HEALTH:
        return web.Response(text="ok")
    if path == "/metrics":
        return web.Response(body=server.metrics.render(), content_type="text/plain", charset="utf-8")
    if info.is_resource:
        return await handlers.handle(server, request, info)
    if request.method not in ("GET", "HEAD"):
        raise errors.method_not_allowed()
    doc = openapi.route(path) or discovery.route(path, request.host, server.config.git_version)
    if doc is None:
        raise errors.ApiError(404, "the server could not find the requested resource", "NotFound")
    return json_response(doc)


def _authenticate(server: Server, request: web.Request) -> UserInfo:
    user = routing.authenticate(request.headers, server.users)
    if user is not None:
        return user
    path = request.path
    if path in routing.PUBLIC_PATHS or (path == "/metrics" and server.config.anonymous_metrics):
        return routing.ANONYMOUS
    raise errors.unauthorized()


def _cut(request: web.Request) -> web.Response:
    """Reset the client's connection, as a dead server does (the response is never sent)."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=503)


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Serve any request: auth, APF, handler, metrics, Status errors."""
    server = request.app[SERVER_KEY]
    if server.lifecycle.down():  # OOM-killed: nobody answers
        return _cut(request)
    started = time.perf_counter()
    verb, resource, code = request.method, "", 500
    kind = "readOnly"
    inflight = server.metrics.inflight
    counted = False
    try:
        user = _authenticate(server, request)
        request["user"] = user
        info = routing.parse(request.method, request.path, request.query, user)
        verb = METRIC_VERBS.get(info.verb, request.method)
        resource = info.resource
        kind = "mutating" if info.verb in MUTATING else "readOnly"
        if info.verb != "watch":
            inflight.labels(kind).inc()
            counted = True
        if info.verb == "list" and request.query.get("limit", "").isdigit():
            info.extra["limit"] = int(request.query["limit"])
        ticket = await server.flow.acquire(info, work_width(server, info))
        pf_headers = {
            "X-Kubernetes-PF-FlowSchema-UID": ticket.schema_uid,
            "X-Kubernetes-PF-PriorityLevel-UID": ticket.level.uid,
        }
        request["apf_ticket"] = ticket
        request["apf_headers"] = pf_headers
        charge = None
        try:
            if server.lifecycle.initializing() and served_from_cache(info, request.query):
                raise errors.too_many_requests("storage is (re)initializing")
            found = listed(server, info)
            charge = server.heap.charge(*found) if found is not None else None
            if server.lifecycle.down():  # this LIST was the one too many
                code = 499  # the client sees its connection reset, never a status
                return _cut(request)
            response = await _route(server, request, info)
        finally:
            server.flow.release(ticket)
            if charge is not None:
                server.heap.release(charge)
        if not response.prepared:
            response.headers.update(pf_headers)
        code = response.status
        return response
    except errors.ApiError as exc:
        code = exc.code
        return json_response(exc.status(), exc.code, exc.headers)
    except asyncio.CancelledError:
        code = 499  # the client went away mid-response (nginx's convention)
        raise
    except ConnectionResetError as exc:  # the connection was cut (client gone, or the server OOM-killed)
        code = 499
        raise asyncio.CancelledError from exc  # aiohttp treats it as a premature disconnection, quietly
    except Exception as exc:  # the API answers every failure as a Status
        log.exception("internal error serving %s %s", request.method, request.path)
        code = 500
        return json_response(
            errors.ApiError(500, f"Internal error occurred: {exc}", "InternalError").status(), 500
        )
    finally:
        if counted:
            inflight.labels(kind).dec()
        server.metrics.requests.labels(verb, resource, str(code)).inc()
        if verb != "WATCH":
            server.metrics.duration.labels(verb, resource).observe(time.perf_counter() - started)


async def _on_shutdown(app: web.Application) -> None:
    app[SERVER_KEY].store.close_watchers()


def build_app(config: ApiServerConfig) -> web.Application:
    """The aiohttp application serving one emulated API server."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[SERVER_KEY] = Server(config)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    app.on_shutdown.append(_on_shutdown)
    return app
