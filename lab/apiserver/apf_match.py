"""APF classification: which FlowSchema (and so which priority level) a request falls into.

FlowSchemas are read live from the store; the sorted list is rebuilt whenever any FlowSchema is
written, so a break-glass FlowSchema created through the API matches from the next request on.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from lab.apiserver.resources import BY_KEY
from lab.apiserver.store import Obj, Store

FLOWSCHEMAS = BY_KEY["flowschemas.flowcontrol.apiserver.k8s.io"]


@dataclass(frozen=True)
class RequestInfo:
    """What APF and the handlers know about a request."""

    user: str
    groups: tuple[str, ...]
    verb: str
    path: str
    is_resource: bool = False
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def _has(values: list[str] | None, value: str) -> bool:
    return bool(values) and ("*" in values or value in values)  # type: ignore[operator]


def _subject_matches(subject: Obj, info: RequestInfo) -> bool:
    kind = subject.get("kind")
    if kind == "User":
        name = (subject.get("user") or {}).get("name")
        return name == "*" or name == info.user
    if kind == "Group":
        name = (subject.get("group") or {}).get("name")
        return name == "*" or name in info.groups
    if kind == "ServiceAccount":
        sa = subject.get("serviceAccount") or {}
        prefix = f"system:serviceaccount:{sa.get('namespace')}:"
        return info.user.startswith(prefix) and sa.get("name") in ("*", info.user[len(prefix) :])
    return False


def _resource_rule_matches(rule: Obj, info: RequestInfo) -> bool:
    if not info.is_resource or not _has(rule.get("verbs"), info.verb):
        return False
    if not _has(rule.get("apiGroups"), info.api_group):
        return False
    resource = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    if not _has(rule.get("resources"), resource):
        return False
    if not info.namespace:
        return bool(rule.get("clusterScope"))
    return _has(rule.get("namespaces"), info.namespace)


def _non_resource_rule_matches(rule: Obj, info: RequestInfo) -> bool:
    if info.is_resource or not _has(rule.get("verbs"), info.verb):
        return False
    for url in rule.get("nonResourceURLs") or []:
        if url == "*" or url == info.path or (url.endswith("/*") and info.path.startswith(url[:-1])):
            return True
    return False


def schema_matches(schema: Obj, info: RequestInfo) -> bool:
    """Whether one FlowSchema matches the request."""
    for rule in (schema.get("spec") or {}).get("rules") or []:
        if not any(_subject_matches(s, info) for s in rule.get("subjects") or []):
            continue
        if any(_resource_rule_matches(r, info) for r in rule.get("resourceRules") or []):
            return True
        if any(_non_resource_rule_matches(r, info) for r in rule.get("nonResourceRules") or []):
            return True
    return False


class Classifier:
    """Matches requests against the live FlowSchemas in precedence order."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._generation = -1
        self._sorted: list[Obj] = []

    def schemas(self) -> list[Obj]:
        """FlowSchemas sorted by (matchingPrecedence, name), refreshed after any change."""
        gen = self.store.generation.get(FLOWSCHEMAS.key, 0)
        if gen != self._generation:
            objs = list(self.store.table(FLOWSCHEMAS).iter_sorted(None))
            objs.sort(
                key=lambda o: (
                    int((o.get("spec") or {}).get("matchingPrecedence", 1000)),
                    o["metadata"]["name"],
                )
            )
            self._sorted = objs
            self._generation = gen
        return self._sorted

    def classify(self, info: RequestInfo, levels: Container[str]) -> Obj | None:
        """The first matching FlowSchema whose priority level exists (dangling ones are skipped), or None."""
        for schema in self.schemas():
            level = ((schema.get("spec") or {}).get("priorityLevelConfiguration") or {}).get("name", "")
            if level in levels and schema_matches(schema, info):
                return schema
        return None

    @staticmethod
    def flow_key(schema: Obj, info: RequestInfo) -> str:
        """The flow a request belongs to: schema name plus the distinguisher (user or namespace)."""
        method = ((schema.get("spec") or {}).get("distinguisherMethod") or {}).get("type")
        if method == "ByUser":
            return f"{schema['metadata']['name']}|{info.user}"
        if method == "ByNamespace":
            return f"{schema['metadata']['name']}|{info.namespace}"
        return str(schema["metadata"]["name"])
