"""Server-side printing: answer ``Accept: application/json;as=Table`` (kubectl get) with a meta.k8s.io
Table holding a few columns per resource, and plain JSON otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from lab.apiserver.registry import ListResult
from lab.apiserver.resources import Resource
from lab.apiserver.server import encode, json_response
from lab.apiserver.store import Obj

Column = tuple[str, str, Callable[[Obj], Any]]
STREAM_CHUNK = 250


def age(obj: Obj) -> str:
    """Human age of an object, like kubectl's (5s, 3m, 2h, 4d)."""
    stamp = obj.get("metadata", {}).get("creationTimestamp")
    if not stamp:
        return "<unknown>"
    created = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _pod_ready(obj: Obj) -> str:
    statuses = obj.get("status", {}).get("containerStatuses") or []
    total = len((obj.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_restarts(obj: Obj) -> int:
    return sum(int(s.get("restartCount", 0)) for s in obj.get("status", {}).get("containerStatuses") or [])


def _node_status(obj: Obj) -> str:
    conditions = obj.get("status", {}).get("conditions") or []
    ready = next((c.get("status") for c in conditions if c.get("type") == "Ready"), None)
    text = "Ready" if ready == "True" else "NotReady" if ready is not None else "Unknown"
    if (obj.get("spec") or {}).get("unschedulable"):
        text += ",SchedulingDisabled"
    return text


def _roles(obj: Obj) -> str:
    labels = obj.get("metadata", {}).get("labels") or {}
    roles = [k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")]
    return ",".join(sorted(roles)) or "<none>"


def _deploy_ready(obj: Obj) -> str:
    status = obj.get("status") or {}
    return f"{status.get('readyReplicas', 0)}/{(obj.get('spec') or {}).get('replicas', 0)}"


def _status(path: str, default: Any = "") -> Callable[[Obj], Any]:
    def get(obj: Obj) -> Any:
        cur: Any = obj
        for part in path.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        return default if cur is None else cur

    return get


def _role_ref(obj: Obj) -> str:
    ref = obj.get("roleRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


NAME: Column = ("Name", "string", lambda o: o["metadata"]["name"])
AGE: Column = ("Age", "string", age)
COLUMNS: dict[str, list[Column]] = {
    "pods": [
        NAME,
        ("Ready", "string", _pod_ready),
        ("Status", "string", _status("status.phase")),
        ("Restarts", "integer", _pod_restarts),
        AGE,
        ("IP", "string", _status("status.podIP", "<none>")),
        ("Node", "string", _status("spec.nodeName", "<none>")),
    ],
    "nodes": [
        NAME,
        ("Status", "string", _node_status),
        ("Roles", "string", _roles),
        AGE,
        ("Version", "string", _status("status.nodeInfo.kubeletVersion")),
    ],
    "deployments": [
        NAME,
        ("Ready", "string", _deploy_ready),
        ("Up-to-date", "integer", _status("status.updatedReplicas", 0)),
        ("Available", "integer", _status("status.availableReplicas", 0)),
        AGE,
    ],
    "daemonsets": [
        NAME,
        ("Desired", "integer", _status("status.desiredNumberScheduled", 0)),
        ("Current", "integer", _status("status.currentNumberScheduled", 0)),
        ("Ready", "integer", _status("status.numberReady", 0)),
        AGE,
    ],
    "services": [
        NAME,
        ("Type", "string", _status("spec.type")),
        ("Cluster-IP", "string", _status("spec.clusterIP", "<none>")),
        AGE,
    ],
    "namespaces": [NAME, ("Status", "string", _status("status.phase")), AGE],
    "roles": [NAME, ("Created At", "date", _status("metadata.creationTimestamp"))],
    "clusterroles": [NAME, ("Created At", "date", _status("metadata.creationTimestamp"))],
    "rolebindings": [NAME, ("Role", "string", _role_ref), AGE],
    "clusterrolebindings": [NAME, ("Role", "string", _role_ref), AGE],
    "leases": [NAME, ("Holder", "string", _status("spec.holderIdentity")), AGE],
    "flowschemas": [
        NAME,
        ("PriorityLevel", "string", _status("spec.priorityLevelConfiguration.name")),
        ("MatchingPrecedence", "integer", _status("spec.matchingPrecedence", 1000)),
        ("DistinguisherMethod", "string", _status("spec.distinguisherMethod.type", "<none>")),
        AGE,
    ],
    "prioritylevelconfigurations": [
        NAME,
        ("Type", "string", _status("spec.type")),
        ("NominalConcurrencyShares", "string", _status("spec.limited.nominalConcurrencyShares", "<none>")),
        ("Queues", "string", _status("spec.limited.limitResponse.queuing.queues", "<none>")),
        ("HandSize", "string", _status("spec.limited.limitResponse.queuing.handSize", "<none>")),
        (
            "QueueLengthLimit",
            "string",
            _status("spec.limited.limitResponse.queuing.queueLengthLimit", "<none>"),
        ),
        AGE,
    ],
}


def wants_table(request: web.Request) -> bool:
    """Whether the client asked for a Table (kubectl get)."""
    accept = request.headers.get("Accept", "")
    return "as=Table" in accept


def _table(resource: Resource, items: list[Obj], rv: int, cont: str = "") -> Obj:
    columns = COLUMNS.get(resource.plural, [NAME, AGE])
    rows = []
    for obj in items:
        meta = obj["metadata"]
        rows.append(
            {
                "cells": [fn(obj) for _, _, fn in columns],
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta},
            }
        )
    defs = [
        {"name": n, "type": t, "format": "name" if n == "Name" else "", "description": n, "priority": 0}
        for n, t, _ in columns
    ]
    meta_out: Obj = {"resourceVersion": str(rv)}
    if cont:
        meta_out["continue"] = cont
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta_out,
        "columnDefinitions": defs,
        "rows": rows,
    }


def respond(request: web.Request, resource: Resource, obj: Obj, rv: int) -> web.Response:
    """Answer a GET with the object, or a one-row Table."""
    if wants_table(request):
        return json_response(_table(resource, [obj], rv))
    return json_response(obj)


async def respond_list(request: web.Request, resource: Resource, result: ListResult) -> web.StreamResponse:
    """Answer a LIST with a <Kind>List, or a Table; large lists are streamed in chunks."""
    if wants_table(request):
        return json_response(_table(resource, result.items, result.resource_version, result.continue_token))
    meta: Obj = {"resourceVersion": str(result.resource_version)}
    if result.continue_token:
        meta["continue"] = result.continue_token
    if result.remaining is not None:
        meta["remainingItemCount"] = result.remaining
    body = {
        "kind": f"{resource.kind}List",
        "apiVersion": resource.api_version,
        "metadata": meta,
        "items": result.items,
    }
    if len(result.items) <= STREAM_CHUNK:
        return json_response(body)
    return await stream_json(request, body)


async def stream_json(request: web.Request, body: Obj) -> web.StreamResponse:
    """Write a list body in chunks of items, yielding to the loop between chunks.

    Like the real server, the request keeps its APF seats until the whole body is written, and
    concurrent LISTs interleave instead of each monopolising the process.
    """
    items = body.pop("items")
    head = encode(body)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.headers.update(request.get("apf_headers") or {})
    await response.prepare(request)
    await response.write(head[:-1] + b',"items":[')
    for start in range(0, len(items), STREAM_CHUNK):
        chunk = encode(items[start : start + STREAM_CHUNK])[1:-1]
        await response.write(chunk + (b"," if start + STREAM_CHUNK < len(items) else b""))
        await asyncio.sleep(0)
    await response.write(b"]}")
    await response.write_eof()
    return response
