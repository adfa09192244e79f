"""Object lifecycle over the store: create, get, list, update, patch, delete, with the API's rules.

Covers generateName, resourceVersion optimistic concurrency, generation bumps on spec changes,
status subresources (a main-resource write keeps the old status and vice versa), no-op updates
that do not bump the resourceVersion, namespace lifecycle (create in a missing namespace is 404,
deleting a namespace deletes its objects) and owner-reference cascading deletes.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
import uuid
from dataclasses import dataclass

import msgspec

from lab.apiserver import errors, validation
from lab.apiserver.patch import deep_copy
from lab.apiserver.resources import BY_KEY, RESOURCES, Resource
from lab.apiserver.selectors import Predicate
from lab.apiserver.store import Obj, Store

NAMESPACES = BY_KEY["namespaces"]
# Objects returned whole by DELETE (others answer a Status), like the real registries.
RETURN_DELETED = {"pods", "namespaces", "services"}
# Owners whose dependents (pods, replicasets) are deleted with them unless propagationPolicy=Orphan.
OWNER_KINDS = {"deployments", "replicasets", "daemonsets"}
DEPENDENT_KEYS = ("replicasets.apps", "pods")
_ALPHANUM = "bcdfghjklmnpqrstvwxz2456789"


@dataclass
class ListResult:
    """One page of a LIST."""

    items: list[Obj]
    resource_version: int
    continue_token: str
    remaining: int | None


class Registry:
    """Create/read/update/delete of objects held in a ``Store``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._next_ip = int(ipaddress.IPv4Address("10.96.0.10"))

    def _allocate_ip(self) -> str:
        self._next_ip += 1
        return str(ipaddress.IPv4Address(self._next_ip))

    # -- reads ---------------------------------------------------------------------------------
    def table_get(self, resource: Resource, namespace: str, name: str) -> Obj | None:
        """The stored object or None."""
        return self.store.table(resource).get(namespace if resource.namespaced else "", name)

    def get(self, resource: Resource, namespace: str, name: str) -> Obj:
        """The stored object or 404."""
        obj = self.store.table(resource).get(namespace, name)
        if obj is None:
            raise errors.not_found(resource.plural, resource.group, name)
        return obj

    def list(
        self,
        resource: Resource,
        namespace: str | None,
        pred: Predicate | None,
        limit: int = 0,
        continue_token: str = "",
    ) -> ListResult:
        """Objects matching ``pred`` in (namespace, name) order, paginated with limit/continue."""
        start = ""
        rv = self.store.rv
        if continue_token:
            start, rv = self._decode_continue(continue_token)
        items: list[Obj] = []
        remaining = 0
        last_key = ""
        for obj in self.store.table(resource).iter_sorted(namespace):
            meta = obj["metadata"]
            if start and f"{meta.get('namespace', '')}/{meta['name']}" <= start:
                continue
            if pred is not None and not pred(obj):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            items.append(obj)
            last_key = f"{meta.get('namespace', '')}/{meta['name']}"
        token = self._encode_continue(last_key, rv) if remaining else ""
        return ListResult(items, rv, token, remaining if remaining else None)

    def _encode_continue(self, key: str, rv: int) -> str:
        raw = msgspec.json.encode({"v": "meta.k8s.io/v1", "rv": rv, "start": key})
        return base64.urlsafe_b64encode(raw).decode()

    def _decode_continue(self, token: str) -> tuple[str, int]:
        try:
            doc = msgspec.json.decode(base64.urlsafe_b64decode(token.encode()))
            start, rv = str(doc["start"]), int(doc["rv"])
        except (ValueError, KeyError, TypeError, msgspec.DecodeError) as exc:
            raise errors.bad_request(f"continue key is not valid: {exc}") from exc
        if rv < self.store.compacted_rv:
            raise errors.expired(
                "The provided continue parameter is too old to display a consistent list result. You can start "
                "a new list without the continue parameter."
            )
        return start, rv

    # -- writes --------------------------------------------------------------------------------
    def create(self, resource: Resource, namespace: str, body: Obj, dry_run: bool = False) -> Obj:
        """Create an object (201 semantics); 409 if it exists, 404 if its namespace does not."""
        validation.check_kind(resource, body)
        meta = body.get("metadata")
        if not isinstance(meta, dict):
            meta = body["metadata"] = {}
        validation.require_name(resource, meta)
        if resource.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            if self.store.table(NAMESPACES).get("", namespace) is None:
                raise errors.not_found("namespaces", "", namespace)
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        table = self.store.table(resource)
        if not meta.get("name"):
            name = ""
            for _ in range(20):
                name = meta["generateName"] + "".join(secrets.choice(_ALPHANUM) for _ in range(5))
                if table.get(namespace, name) is None:
                    break
            meta["name"] = name
        name = meta["name"]
        validation.check_name(resource, name)
        if table.get(namespace if resource.namespaced else "", name) is not None:
            raise errors.already_exists(resource.plural, resource.group, name)
        rv = self.store.rv if dry_run else self.store.next_rv()
        meta.pop("deletionTimestamp", None)
        meta["uid"] = str(uuid.uuid4())
        meta["resourceVersion"] = str(rv)
        meta["creationTimestamp"] = validation.now()
        if "spec" in body:
            meta["generation"] = 1
        validation.apply_defaults(resource, body, self._allocate_ip)
        validation.omit_empty(resource, body)
        if dry_run:
            return body
        table.put(namespace if resource.namespaced else "", name, body)
        self.store.record("ADDED", resource, body, None, rv)
        return body

    def update(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        body: Obj,
        subresource: str = "",
        dry_run: bool = False,
    ) -> Obj:
        """Replace an object (PUT); 409 Conflict on a stale metadata.resourceVersion."""
        validation.check_kind(resource, body)
        ns = namespace if resource.namespaced else ""
        current = self.get(resource, ns, name)
        meta = body.get("metadata")
        if not isinstance(meta, dict):
            meta = body["metadata"] = {}
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        want_rv = meta.get("resourceVersion")
        if want_rv and want_rv != current["metadata"]["resourceVersion"]:
            raise errors.conflict(resource.plural, resource.group, name)
        return self._commit(resource, ns, name, current, body, subresource, dry_run)

    def _commit(
        self, resource: Resource, ns: str, name: str, current: Obj, body: Obj, subresource: str, dry_run: bool
    ) -> Obj:
        meta = body.setdefault("metadata", {})
        cur_meta = current["metadata"]
        if subresource == "status":
            new = dict(current)
            if "status" in body:
                new["status"] = body["status"]
            new["metadata"] = dict(cur_meta)
        else:
            new = body
            if "status" in resource.subresources:
                if "status" in current:
                    new["status"] = current["status"]
                else:
                    new.pop("status", None)
            elif "status" not in new and "status" in current:
                new["status"] = current["status"]
            new["metadata"] = meta = dict(meta)
            meta["name"] = name
            for key in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
                if key in cur_meta:
                    meta[key] = cur_meta[key]
                else:
                    meta.pop(key, None)
            if resource.namespaced:
                meta["namespace"] = ns
            else:
                meta.pop("namespace", None)
            if "spec" in new and new.get("spec") != current.get("spec"):
                meta["generation"] = int(cur_meta.get("generation", 0)) + 1
        new["metadata"]["resourceVersion"] = cur_meta["resourceVersion"]
        validation.omit_empty(resource, new)
        if new == current or dry_run:
            return new
        rv = self.store.next_rv()
        new["metadata"]["resourceVersion"] = str(rv)
        self.store.table(resource).put(ns, name, new)
        self.store.record("MODIFIED", resource, new, current, rv)
        return new

    def patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        patched: Obj,
        subresource: str = "",
        dry_run: bool = False,
    ) -> Obj:
        """Store the result of applying a patch (built by ``patch.apply_patch``) to the current object."""
        ns = namespace if resource.namespaced else ""
        current = self.get(resource, ns, name)
        meta = patched.get("metadata") or {}
        if meta.get("resourceVersion") and meta["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise errors.conflict(resource.plural, resource.group, name)
        patched["kind"] = resource.kind
        patched["apiVersion"] = resource.api_version
        return self._commit(resource, ns, name, current, patched, subresource, dry_run)

    def delete(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        orphan: bool = False,
        uid: str = "",
        dry_run: bool = False,
    ) -> Obj:
        """Delete an object now; returns its last state. Cascades to namespaces' contents and dependents."""
        ns = namespace if resource.namespaced else ""
        current = self.get(resource, ns, name)
        if uid and current["metadata"].get("uid") != uid:
            raise errors.conflict(resource.plural, resource.group, name)
        if dry_run:
            return current
        self.store.table(resource).remove(ns, name)
        last = dict(current)
        last["metadata"] = dict(current["metadata"])
        last["metadata"]["deletionTimestamp"] = validation.now()
        rv = self.store.next_rv()
        last["metadata"]["resourceVersion"] = str(rv)
        self.store.record("DELETED", resource, last, current, rv)
        if resource.plural == "namespaces":
            self._delete_namespace_contents(name)
        elif resource.plural in OWNER_KINDS and not orphan:
            self._delete_dependents(ns, str(current["metadata"].get("uid")))
        return last

    def _delete_namespace_contents(self, namespace: str) -> None:
        for res in RESOURCES:
            if not res.namespaced:
                continue
            for obj in list(self.store.table(res).by_ns.get(namespace, {}).values()):
                self.delete(res, namespace, obj["metadata"]["name"])

    def _delete_dependents(self, namespace: str, owner_uid: str) -> None:
        for key in DEPENDENT_KEYS:
            res = BY_KEY[key]
            for obj in list(self.store.table(res).by_ns.get(namespace, {}).values()):
                owners = obj["metadata"].get("ownerReferences") or []
                if any(o.get("uid") == owner_uid for o in owners):
                    self.delete(res, namespace, obj["metadata"]["name"])

    def deleted_status(self, resource: Resource, obj: Obj) -> Obj:
        """The body DELETE answers: the object for some resources, a Success Status for the rest."""
        if resource.plural in RETURN_DELETED:
            return obj
        details: Obj = {
            "name": obj["metadata"]["name"],
            "kind": resource.plural,
            "uid": obj["metadata"].get("uid"),
        }
        if resource.group:
            details["group"] = resource.group
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def copy(self, obj: Obj) -> Obj:
        """A deep copy of a stored object (for patching)."""
        return deep_copy(obj)
