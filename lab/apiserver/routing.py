"""Turning a URL and method into request attributes (verb, group, resource, namespace, name), the way
the real server's RequestInfoFactory does, and authenticating bearer tokens."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lab.apiserver import errors
from lab.apiserver.apf_match import RequestInfo
from lab.apiserver.users import UserInfo

NAMESPACE_SUBRESOURCES = {"status", "finalize"}
_READ_METHODS = {"GET": "get", "HEAD": "get"}
_WRITE_METHODS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
ANONYMOUS = UserInfo(username="system:anonymous", groups=["system:unauthenticated"])
# Non-resource paths anyone may read (the real server's system:public-info-viewer role).
PUBLIC_PATHS = {"/healthz", "/livez", "/readyz", "/version", "/version/"}


def authenticate(headers: Mapping[str, str], users: Mapping[str, UserInfo]) -> UserInfo | None:
    """The user of a request's bearer token, or None when there is no token; 401 for an unknown one."""
    header = headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.unauthorized()
    user = users.get(token.strip())
    if user is None:
        raise errors.unauthorized()
    return user


def parse(method: str, path: str, query: Mapping[str, str], user: UserInfo) -> RequestInfo:
    """Request attributes for APF and the handlers."""
    groups = tuple(user.groups)
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        verb = _READ_METHODS.get(method) or method.lower()
        return RequestInfo(user.username, groups, verb, path)
    if parts[0] == "api":
        if len(parts) < 2:
            return RequestInfo(user.username, groups, "get", path)
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 3:
            return RequestInfo(user.username, groups, "get", path)
        group, version, rest = parts[1], parts[2], parts[3:]
    if not rest:
        return RequestInfo(user.username, groups, "get", path)
    watch_prefix = False
    if rest[0] == "watch":
        watch_prefix, rest = True, rest[1:]
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    if not rest:
        raise errors.ApiError(404, "the server could not find the requested resource", "NotFound")
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if len(rest) > 3:
        raise errors.ApiError(404, "the server could not find the requested resource", "NotFound")
    verb = _verb(method, bool(name), watch_prefix or _truthy(query.get("watch")))
    return RequestInfo(
        user.username, groups, verb, path, True, group, version, resource, subresource, namespace, name
    )


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


def _verb(method: str, has_name: bool, watch: bool) -> str:
    if method in _READ_METHODS:
        if watch:
            return "watch"
        return "get" if has_name else "list"
    if method == "DELETE" and not has_name:
        return "deletecollection"
    verb = _WRITE_METHODS.get(method)
    if verb is None:
        raise errors.method_not_allowed()
    return verb


def dry_run(query: Any) -> bool:
    """Whether the request asks for a server-side dry run (dryRun=All): validate, answer, store nothing."""
    if "dryRun" not in query:
        return False
    values = query.getall("dryRun") if hasattr(query, "getall") else [query.get("dryRun")]
    if any(v != "All" for v in values):
        raise errors.bad_request(f"unsupported dryRun value: {values}")
    return True
