"""PATCH bodies: JSON merge patch (RFC 7386), strategic merge patch and JSON patch (RFC 6902).

Strategic merge knows the list merge keys of the common built-in types (containers/name,
env/name, ports/containerPort or port, volumes/name, volumeMounts/mountPath, conditions/type,
addresses/type, ownerReferences/uid, imagePullSecrets/name...) and the ``$patch`` (delete,
replace, merge) and ``$retainKeys`` directives; ``$setElementOrder`` is accepted and ignored.
Lists without a merge key (tolerations, taints, args...) are replaced, as the real schema says.
"""

from __future__ import annotations

from typing import Any

import jsonpatch
import msgspec
import yaml

from lab.apiserver import errors

Obj = dict[str, Any]

MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "conditions": "type",
    "addresses": "type",
    "ownerReferences": "uid",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "containerStatuses": "name",
    "initContainerStatuses": "name",
    "podIPs": "ip",
    "resourceClaims": "name",
}
PRIMITIVE_MERGE = {"finalizers"}
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"


def deep_copy(obj: Obj) -> Obj:
    """A fast deep copy of a JSON object."""
    out: Obj = msgspec.json.decode(msgspec.json.encode(obj))
    return out


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _ports_key(items: list[Any]) -> str:
    for item in items:
        if isinstance(item, dict) and "containerPort" in item:
            return "containerPort"
    return "port"


def _merge_list(field: str, target: list[Any], patch: list[Any]) -> list[Any]:
    key = _ports_key(patch + target) if field == "ports" else MERGE_KEYS.get(field)
    if field in PRIMITIVE_MERGE:
        out = list(target)
        for item in patch:
            if item not in out:
                out.append(item)
        return out
    if key is None or not all(isinstance(i, dict) for i in patch):
        return [strip_directives(i) for i in patch if not (isinstance(i, dict) and i.get("$patch"))]
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [strip_directives(i) for i in patch if not i.get("$patch")]
    out = list(target)
    for item in patch:
        directive = item.get("$patch")
        index = next(
            (n for n, cur in enumerate(out) if isinstance(cur, dict) and cur.get(key) == item.get(key)), None
        )
        if directive == "delete":
            if index is not None:
                out.pop(index)
        elif index is None:
            out.append(strip_directives(item))
        else:
            out[index] = strategic_merge(out[index], item)
    return out


def strip_directives(value: Any) -> Any:
    """Drop $-directives from a value that is inserted whole."""
    if isinstance(value, dict):
        return {k: strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [strip_directives(v) for v in value]
    return value


def strategic_merge(target: Any, patch: Any) -> Any:
    """Kubernetes strategic merge patch for the built-in types' common list merge keys."""
    if not isinstance(patch, dict):
        return patch
    directive = patch.get("$patch")
    if directive == "replace":
        return strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    if directive == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value)
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = strip_directives(value)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def apply_patch(current: Obj, content_type: str, body: bytes) -> Obj:
    """Apply a PATCH body of the given content type to a copy of ``current``."""
    ctype = content_type.split(";")[0].strip().lower()
    try:
        if ctype == JSON_PATCH:
            ops = msgspec.json.decode(body)
            patched: Obj = jsonpatch.apply_patch(deep_copy(current), ops)
            return patched
        if ctype == APPLY:
            doc = yaml.safe_load(body)
            return merge_patch(current, doc)  # type: ignore[no-any-return]
        doc = msgspec.json.decode(body)
    except (msgspec.DecodeError, jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise errors.ApiError(
            422, f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    except ValueError as exc:
        raise errors.bad_request(f"invalid patch: {exc}") from exc
    if not isinstance(doc, dict):
        raise errors.bad_request("patch body must be a JSON object")
    if ctype == MERGE_PATCH:
        return merge_patch(deep_copy(current), doc)  # type: ignore[no-any-return]
    if ctype == STRATEGIC:
        return strategic_merge(deep_copy(current), doc)  # type: ignore[no-any-return]
    raise errors.ApiError(
        415,
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC}, {APPLY}",
        "UnsupportedMediaType",
    )
