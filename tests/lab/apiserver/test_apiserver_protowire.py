"""Protobuf access reviews (lab.apiserver.protowire): the Kubernetes envelope and SubjectAccessReview spec fields."""

from __future__ import annotations

import pytest

from lab.apiserver import errors
from lab.apiserver.protowire import MAGIC, decode_review


def varint(n: int) -> bytes:
    """Protobuf base-128 varint."""
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, payload: bytes | str) -> bytes:
    """A length-delimited field."""
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def envelope(spec: bytes, kind: str = "SubjectAccessReview") -> bytes:
    """The k8s protobuf envelope around an access review holding ``spec``."""
    type_meta = field(1, "authorization.k8s.io/v1") + field(2, kind)
    review = field(1, b"") + field(2, spec) + field(3, b"")
    return (
        MAGIC
        + field(1, type_meta)
        + field(2, review)
        + field(3, "")
        + field(4, "application/vnd.kubernetes.protobuf")
    )


def test_subject_access_review_spec_is_decoded() -> None:
    """Resource attributes, user, groups, extra and uid come out as the JSON spec would carry them."""
    attrs = (
        field(1, "ns")
        + field(2, "create")
        + field(3, "gameday.dev")
        + field(5, "agentfaults")
        + field(7, "gpu-1")
    )
    extra = field(1, "scopes") + field(2, field(1, "a") + field(1, "b"))
    spec = (
        field(1, attrs)
        + field(3, "alice")
        + field(4, "g1")
        + field(4, "g2")
        + field(5, extra)
        + field(6, "u-1")
    )
    assert decode_review(envelope(spec))["spec"] == {
        "resourceAttributes": {
            "namespace": "ns",
            "verb": "create",
            "group": "gameday.dev",
            "resource": "agentfaults",
            "name": "gpu-1",
        },
        "user": "alice",
        "groups": ["g1", "g2"],
        "extra": {"scopes": ["a", "b"]},
        "uid": "u-1",
    }


def test_non_resource_attributes_and_unknown_fields() -> None:
    """Non-resource attributes decode; varint fields the lab does not read are skipped."""
    spec = field(2, field(1, "/healthz") + field(2, "get")) + varint(9 << 3) + varint(300)
    assert decode_review(envelope(spec, "SelfSubjectAccessReview"))["spec"] == {
        "nonResourceAttributes": {"path": "/healthz", "verb": "get"}
    }


@pytest.mark.parametrize("raw", [b"{}", MAGIC + b"\x0a\x05ab", MAGIC + b"\x0b"])
def test_malformed_bodies_are_400(raw: bytes) -> None:
    """No envelope, a truncated field or an unknown wire type is a 400 BadRequest, not a crash."""
    with pytest.raises(errors.ApiError) as err:
        decode_review(raw)
    assert err.value.code == 400
