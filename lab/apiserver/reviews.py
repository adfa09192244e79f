"""Review resources answered per request and never stored: TokenReview (from the users table),
SelfSubjectReview (``kubectl auth whoami``) and SelfSubjectAccessReview (``kubectl auth can-i``:
always allowed, since the lab server has no RBAC). kubectl sends the last two as protobuf, which is
not decoded: their answers do not depend on the body."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from lab.apiserver import errors
from lab.apiserver.apf_match import RequestInfo
from lab.apiserver.resources import Resource
from lab.apiserver.server import Server, json_response
from lab.apiserver.store import Obj
from lab.apiserver.users import UserInfo


def _user(user: UserInfo) -> Obj:
    return {"username": user.username, "uid": user.uid, "groups": list(user.groups)}


def token_review(server: Server, body: Obj) -> Obj:
    """status.authenticated and status.user for spec.token."""
    spec = body.get("spec") or {}
    user = server.users.get(spec.get("token", ""))
    status: dict[str, Any] = {
        "authenticated": user is not None,
        "audiences": spec.get("audiences") or ["https://kubernetes.default.svc.cluster.local"],
    }
    if user is not None:
        status["user"] = _user(user)
    else:
        status["error"] = "invalid bearer token"
    return {"spec": spec, "status": status}


async def handle(server: Server, request: web.Request, info: RequestInfo, resource: Resource) -> web.Response:
    """Answer a review create."""
    if info.verb != "create":
        raise errors.method_not_allowed()
    raw = await request.read()
    body: Obj = {}
    if "protobuf" in request.headers.get("Content-Type", ""):
        if resource.plural == "tokenreviews":
            raise errors.ApiError(415, "the lab API server accepts JSON only", "UnsupportedMediaType")
    elif raw:
        try:
            body = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise errors.bad_request(f"the object provided is unrecognized or malformed: {exc}") from exc
    if resource.plural == "tokenreviews":
        out = token_review(server, body)
    elif resource.plural == "selfsubjectreviews":
        user = request["user"]
        out = {"status": {"userInfo": _user(user)}}
    else:
        out = {
            "spec": body.get("spec") or {},
            "status": {
                "allowed": True,
                "reason": "the lab API server has no RBAC: every authenticated user may",
            },
        }
    out.update(kind=resource.kind, apiVersion=resource.api_version, metadata={"creationTimestamp": None})
    return json_response(out, 201)
