"""Review resources answered per request and never stored: TokenReview (from the users table),
SelfSubjectReview (``kubectl auth whoami``), SubjectAccessReview and SelfSubjectAccessReview
(``kubectl auth can-i``), the last two answered by RBAC over the stored Roles, ClusterRoles and
bindings (``rbac.py``). kubectl sends access reviews as protobuf, which ``protowire.py`` decodes;
TokenReviews must be JSON."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from lab.apiserver import errors, protowire, rbac
from lab.apiserver.apf_match import RequestInfo
from lab.apiserver.resources import Resource
from lab.apiserver.server import Server, decode_object, json_response
from lab.apiserver.store import Obj
from lab.apiserver.users import UserInfo

ACCESS_REVIEWS = {"subjectaccessreviews", "selfsubjectaccessreviews"}


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


def _invalid(kind: str, field: str, value: str, message: str) -> errors.ApiError:
    return errors.invalid(
        kind,
        "authorization.k8s.io",
        "",
        [("FieldValueInvalid", field, f'Invalid value: "{value}": {message}')],
    )


def attributes(kind: str, spec: Obj, user: str, groups: list[str]) -> rbac.Attributes:
    """The request a review's spec asks about; 422 unless exactly one kind of attributes is given."""
    res, non = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (res is None) == (non is None):
        raise _invalid(
            kind,
            "spec.resourceAttributes",
            "null",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )
    if isinstance(non, dict):
        return rbac.Attributes(
            user,
            tuple(groups),
            str(non.get("verb") or ""),
            path=str(non.get("path") or ""),
            resource_request=False,
        )
    if not isinstance(res, dict):
        raise errors.bad_request("spec.resourceAttributes must be an object")
    return rbac.Attributes(
        user,
        tuple(groups),
        str(res.get("verb") or ""),
        str(res.get("namespace") or ""),
        str(res.get("group") or ""),
        str(res.get("resource") or ""),
        str(res.get("subresource") or ""),
        str(res.get("name") or ""),
    )


def access_review(server: Server, kind: str, body: Obj, requester: UserInfo) -> Obj:
    """Answer a SubjectAccessReview (the spec's identity) or SelfSubjectAccessReview (the caller's)."""
    spec = body.get("spec")
    spec = dict(spec) if isinstance(spec, dict) else {}
    if kind == "SubjectAccessReview":
        user, groups = str(spec.get("user") or ""), [str(g) for g in spec.get("groups") or []]
        if not user and not groups:
            raise _invalid(kind, "spec.user", "", "at least one of user or group must be specified")
    else:
        user, groups = requester.username, list(requester.groups)
    decision = rbac.authorize(rbac.StoreSource(server.store), attributes(kind, spec, user, groups))
    status: Obj = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    if decision.errors:
        status["evaluationError"] = "; ".join(decision.errors)
    return {"spec": spec, "status": status}


def _decode(request_type: str, raw: bytes, plural: str) -> Obj:
    if "protobuf" in request_type:
        if plural == "tokenreviews":
            raise errors.ApiError(415, "the lab API server accepts JSON only", "UnsupportedMediaType")
        return protowire.decode_review(raw) if plural in ACCESS_REVIEWS else {}
    return decode_object(raw)


async def handle(server: Server, request: web.Request, info: RequestInfo, resource: Resource) -> web.Response:
    """Answer a review create."""
    if info.verb != "create":
        raise errors.method_not_allowed()
    body = _decode(request.headers.get("Content-Type", ""), await request.read(), resource.plural)
    if resource.plural == "tokenreviews":
        out = token_review(server, body)
    elif resource.plural == "selfsubjectreviews":
        out = {"status": {"userInfo": _user(request["user"])}}
    else:
        out = access_review(server, resource.kind, body, request["user"])
    out.update(kind=resource.kind, apiVersion=resource.api_version, metadata={"creationTimestamp": None})
    return json_response(out, 201)
