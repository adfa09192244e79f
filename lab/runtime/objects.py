"""Pure helpers over Kubernetes objects: conditions, readiness, termination, times."""

from __future__ import annotations

import datetime as dt
from typing import Any

Obj = dict[str, Any]



def now_micro() -> str:
    """The current time as a MicroTime string (Lease renewTime)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_time() -> str:
    """The current time as a Time string (second precision)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(obj: Obj, ctype: str) -> Obj | None:
    """The status condition of a type, if present."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return dict(cond)
    return None


def node_ready(node: Obj) -> bool:
    """Whether a node's Ready condition is True."""
    cond = condition(node, "Ready")
    return bool(cond and cond.get("status") == "True")


def is_terminating(obj: Obj) -> bool:
    """Whether an object has a deletionTimestamp."""
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))

