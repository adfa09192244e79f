"""The agent's HTTP API (aiohttp): routes, authentication on every ``/v1`` call, validation, error bodies.

See ``agents/protocol.py`` for the endpoints and models. Authentication comes before anything else,
so a caller without a valid, allowed token learns nothing and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from agents.access import verb_for
from agents.auth import Authenticator
from agents.backends.nvml import Nvml
from agents.errors import AgentFailure, BackendUnavailable, BadRequest, NotFound
from agents.leases import Leases
from agents.protocol import (
    ActiveFaults,
    DeviceList,
    ErrorBody,
    ErrorDetail,
    Health,
    InjectRequest,
    LeaseRenewal,
    RevertAll,
)

M = TypeVar("M", bound=BaseModel)
Handler_ = Callable[[web.Request], Awaitable[web.StreamResponse]]
LEASES: web.AppKey[Leases] = web.AppKey("leases", Leases)
AUTH: web.AppKey[Authenticator] = web.AppKey("auth", Authenticator)
NVML: web.AppKey[Nvml] = web.AppKey("nvml", object)  # type: ignore[arg-type]
INFO: web.AppKey[dict[str, str]] = web.AppKey("info", dict)


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(text=model.model_dump_json(), status=status, content_type="application/json")


def _error(status: int, code: str, message: str, details: list[ErrorDetail] | None = None) -> web.Response:
    return _json(ErrorBody(error=code, message=message, details=details or []), status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler_) -> web.StreamResponse:
    """Turn typed failures and validation errors into ErrorBody responses."""
    try:
        return await handler(request)
    except AgentFailure as exc:
        return _error(exc.status, exc.code, exc.message)
    except ValidationError as exc:
        details = [ErrorDetail(loc=".".join(str(x) for x in e["loc"]) or "body", msg=e["msg"]) for e in exc.errors()]
        summary = "; ".join(f"{d.loc}: {d.msg}" for d in details)
        return _error(422, "invalid", f"request refused: {summary}", details)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler_) -> web.StreamResponse:
    """Every /v1 call needs a bearer token whose identity may do the call's verb (see agents/access.py)."""
    if request.path.startswith("/v1"):
        verb = verb_for(request.method, request.path)
        who = await request.app[AUTH].authorize(request.headers.get("Authorization"), verb)
        request["identity"] = who
    return await handler(request)


async def _body(request: web.Request, model: type[M]) -> M:
    raw = await request.read()
    try:
        data = json.loads(raw or b"null")
    except ValueError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest(f"body must be a JSON object ({model.__name__})")
    return model.model_validate(data)


async def inject(request: web.Request) -> web.Response:
    """POST /v1/faults."""
    req = await _body(request, InjectRequest)
    status, created = await request.app[LEASES].inject(req)
    return _json(status, 201 if created else 200)


async def list_faults(request: web.Request) -> web.Response:
    """GET /v1/faults."""
    leases = request.app[LEASES]
    return _json(ActiveFaults(node=request.app[INFO]["node"], faults=[leases.status(f) for f in leases.faults.values()]))


async def get_fault(request: web.Request) -> web.Response:
    """GET /v1/faults/{id}: status plus fresh evidence read back from the node."""
    leases, fid = request.app[LEASES], request.match_info["fault_id"]
    f = leases.faults.get(fid)
    if f is None:
        raise NotFound(f"no active fault {fid!r}")
    evidence = await leases.handlers[f.params.kind].evidence(f)
    return _json(leases.status(f).model_copy(update={"evidence": evidence}))


async def renew(request: web.Request) -> web.Response:
    """POST /v1/faults/{id}/renew."""
    body = await _body(request, LeaseRenewal)
    return _json(await request.app[LEASES].renew(request.match_info["fault_id"], body.ttl_seconds))


async def revert(request: web.Request) -> web.Response:
    """DELETE /v1/faults/{id} (idempotent)."""
    return _json(await request.app[LEASES].revert(request.match_info["fault_id"], "rollback"))


async def revert_all(request: web.Request) -> web.Response:
    """DELETE /v1/faults[?run_id=...]."""
    results = await request.app[LEASES].revert_all(request.query.get("run_id"), "rollback")
    return _json(RevertAll(results=results))


async def devices(request: web.Request) -> web.Response:
    """GET /v1/devices."""
    nv, node = request.app[NVML], request.app[INFO]["node"]
    try:
        devs = [nv.device(i) for i in range(nv.device_count())]
    except BackendUnavailable as exc:
        return _json(DeviceList(node=node, backend=nv.kind, devices=[], error=exc.message))
    error = getattr(nv, "reason", None) if nv.kind == "none" else None
    return _json(DeviceList(node=node, backend=nv.kind, devices=devs, error=error))


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz (no token: for kubelet probes)."""
    app = request.app
    return _json(Health(node=app[INFO]["node"], active_faults=len(app[LEASES].faults), nvml=app[NVML].kind,
                        kmsg_path=app[INFO]["kmsg_path"]))


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics (no token: counts only, no secrets)."""
    return web.Response(body=request.app[LEASES].metrics.render(), content_type="text/plain", charset="utf-8")


def build_app(leases: Leases, auth: Authenticator, nvml: Nvml, node: str, kmsg_path: str) -> web.Application:
    """The aiohttp application."""
    app = web.Application(middlewares=[errors_middleware, auth_middleware], client_max_size=64 * 1024)
    app[LEASES], app[AUTH], app[NVML] = leases, auth, nvml
    app[INFO] = {"node": node, "kmsg_path": kmsg_path}
    app.router.add_post("/v1/faults", inject)
    app.router.add_get("/v1/faults", list_faults)
    app.router.add_delete("/v1/faults", revert_all)
    app.router.add_get("/v1/faults/{fault_id}", get_fault)
    app.router.add_delete("/v1/faults/{fault_id}", revert)
    app.router.add_post("/v1/faults/{fault_id}/renew", renew)
    app.router.add_get("/v1/devices", devices)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app
