"""Just enough protobuf to read the access reviews kubectl sends (``kubectl auth can-i`` posts a
SelfSubjectAccessReview as ``application/vnd.kubernetes.protobuf``, whatever the server prefers).

The Kubernetes envelope is the magic ``k8s\\0`` followed by a ``runtime.Unknown`` message whose field 2
holds the object's own encoding. Field numbers come from ``k8s.io/api/authorization/v1/generated.proto``.
Only the review spec is decoded; answers still go back as JSON, which client-go accepts.
"""

from __future__ import annotations

from typing import Any

from lab.apiserver import errors

MAGIC = b"k8s\x00"
Obj = dict[str, Any]
Fields = list[tuple[int, int, Any]]
RESOURCE_ATTRS = {
    1: "namespace",
    2: "verb",
    3: "group",
    4: "version",
    5: "resource",
    6: "subresource",
    7: "name",
}
NON_RESOURCE_ATTRS = {1: "path", 2: "verb"}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise errors.bad_request("the object provided is unrecognized or malformed: truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def fields(buf: bytes) -> Fields:
    """The (field number, wire type, value) triples of one message; value is int or bytes."""
    out: Fields = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((number, wire, value))
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise errors.bad_request("the object provided is unrecognized or malformed: truncated field")
            out.append((number, wire, buf[pos : pos + size]))
            pos += size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            out.append((number, wire, buf[pos : pos + width]))
            pos += width
        else:
            raise errors.bad_request(f"the object provided is unrecognized or malformed: wire type {wire}")
    return out


def _strings(buf: bytes, names: dict[int, str]) -> Obj:
    return {names[n]: v.decode() for n, w, v in fields(buf) if w == 2 and n in names}


def _extra(entries: list[bytes]) -> dict[str, list[str]]:
    extra: dict[str, list[str]] = {}
    for entry in entries:
        key, values = "", []
        for n, w, v in fields(entry):
            if n == 1 and w == 2:
                key = v.decode()
            elif n == 2 and w == 2:
                values = [item.decode() for m, t, item in fields(v) if m == 1 and t == 2]
        extra[key] = values
    return extra


def _spec(buf: bytes) -> Obj:
    spec: Obj = {}
    groups: list[str] = []
    extra: list[bytes] = []
    for n, w, v in fields(buf):
        if w != 2:
            continue
        if n == 1:
            spec["resourceAttributes"] = _strings(v, RESOURCE_ATTRS)
        elif n == 2:
            spec["nonResourceAttributes"] = _strings(v, NON_RESOURCE_ATTRS)
        elif n == 3:
            spec["user"] = v.decode()
        elif n == 4:
            groups.append(v.decode())
        elif n == 5:
            extra.append(v)
        elif n == 6:
            spec["uid"] = v.decode()
    if groups:
        spec["groups"] = groups
    if extra:
        spec["extra"] = _extra(extra)
    return spec


def decode_review(raw: bytes) -> Obj:
    """A (Self)SubjectAccessReview from its protobuf envelope, as the JSON dict with its spec."""
    if not raw.startswith(MAGIC):
        raise errors.bad_request("the object provided is unrecognized or malformed: no protobuf envelope")
    inner = next((v for n, w, v in fields(raw[len(MAGIC) :]) if n == 2 and w == 2), b"")
    spec = next((v for n, w, v in fields(inner) if n == 2 and w == 2), b"")
    return {"spec": _spec(spec)}
