"""Minimal validation and defaulting of objects on create/update (names, kinds, a few defaults)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from lab.apiserver import errors
from lab.apiserver.resources import Resource

Obj = dict[str, Any]

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
# Resources whose names must be DNS-1123 labels rather than subdomains.
LABEL_NAMED = {"namespaces", "services"}
# Names that are not DNS names at all (leases may hold colons? no; events hold dots) - checked loosely.
LOOSE_NAMED = {"flowschemas", "prioritylevelconfigurations"}
# RBAC objects take path-segment names (``system:auth-delegator``), like the real RBAC validation.
LOOSE_NAMED |= {"roles", "rolebindings", "clusterroles", "clusterrolebindings"}

# Status fields the API always reports (the Python client's models require them).
DAEMONSET_STATUS = ("currentNumberScheduled", "desiredNumberScheduled", "numberMisscheduled", "numberReady")
PDB_STATUS = ("currentHealthy", "desiredHealthy", "disruptionsAllowed", "expectedPods")


def now() -> str:
    """The current time as the API's RFC 3339 timestamp (second precision, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_name(resource: Resource, name: str) -> None:
    """422 Invalid if the name is not a valid DNS-1123 name for this resource."""
    if resource.plural in LABEL_NAMED:
        ok, msg, limit = bool(_LABEL.match(name)), LABEL_MSG, 63
    elif resource.plural in LOOSE_NAMED:
        ok = bool(name) and "/" not in name and "%" not in name and name not in (".", "..")
        msg, limit = "may not contain '/' or '%' and may not be '.' or '..'", 253
    else:
        ok, msg, limit = bool(_SUBDOMAIN.match(name)), SUBDOMAIN_MSG, 253
    if ok and len(name) > limit:
        ok, msg = False, f"must be no more than {limit} characters"
    if not ok:
        raise errors.invalid(
            resource.kind,
            resource.group,
            name,
            [("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {msg}')],
        )


def check_kind(resource: Resource, body: Obj) -> None:
    """400 if the body's kind/apiVersion disagree with the URL; fill them in when absent."""
    kind = body.get("kind")
    api_version = body.get("apiVersion")
    if kind and kind != resource.kind:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version "
            f"({resource.api_version})"
            if api_version != resource.api_version
            else f"kind {kind} does not match the expected kind {resource.kind}"
        )
    body["kind"] = resource.kind
    body["apiVersion"] = resource.api_version


def apply_defaults(resource: Resource, obj: Obj, allocate_ip: Any) -> None:
    """Fill in the defaults the real server would (pod phase, replicas, service clusterIP...)."""
    plural = resource.plural
    spec = obj.get("spec")
    if plural == "pods":
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Pending")
        if isinstance(spec, dict):
            spec.setdefault("restartPolicy", "Always")
            spec.setdefault("terminationGracePeriodSeconds", 30)
            spec.setdefault("dnsPolicy", "ClusterFirst")
            spec.setdefault("schedulerName", "default-scheduler")
    elif plural == "namespaces":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj.setdefault("status", {"phase": "Active"})
        labels = obj["metadata"].setdefault("labels", {})
        labels.setdefault("kubernetes.io/metadata.name", obj["metadata"]["name"])
    elif plural in ("deployments", "replicasets") and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        obj.setdefault("status", {"replicas": 0} if plural == "replicasets" else {})
    elif plural == "services" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        if "clusterIP" not in spec:
            spec["clusterIP"] = allocate_ip()
        if spec["clusterIP"] != "None":
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        obj.setdefault("status", {"loadBalancer": {}})
    elif plural == "daemonsets":
        obj.setdefault("status", dict.fromkeys(DAEMONSET_STATUS, 0))
    elif plural == "poddisruptionbudgets":
        obj.setdefault("status", dict.fromkeys(PDB_STATUS, 0))
    elif plural == "nodes":
        obj.setdefault("spec", {})
        obj.setdefault("status", {})


# Fields the real server's Go types mark ``omitempty``: a false / empty value is not serialized, so a client
# reads the same object after ``kubectl uncordon`` as before ``kubectl cordon`` (no ``unschedulable: false``,
# no ``taints: []``). Only the fields the lab's controllers and faults toggle are listed.
OMIT_EMPTY: dict[str, tuple[tuple[str, str], ...]] = {
    "nodes": (("spec", "taints"), ("spec", "unschedulable")),
}


def omit_empty(resource: Resource, obj: Obj) -> None:
    """Drop the ``omitempty`` fields of ``OMIT_EMPTY`` that hold false or an empty list / map."""
    for parent, key in OMIT_EMPTY.get(resource.plural, ()):
        holder = obj.get(parent)
        if isinstance(holder, dict) and key in holder and holder[key] in (False, [], {}, None, ""):
            del holder[key]


def require_name(resource: Resource, meta: Obj) -> None:
    """422 if neither name nor generateName is given."""
    if not meta.get("name") and not meta.get("generateName"):
        raise errors.invalid(
            resource.kind,
            resource.group,
            "",
            [("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")],
        )
