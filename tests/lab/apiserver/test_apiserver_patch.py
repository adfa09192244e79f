"""Unit tests of the patch module: merge, strategic merge directives and JSON patch."""

from __future__ import annotations

import json

import pytest

from lab.apiserver.errors import ApiError
from lab.apiserver.patch import JSON_PATCH, MERGE_PATCH, STRATEGIC, apply_patch, merge_patch, strategic_merge

POD = {
    "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}, "finalizers": ["x"]},
    "spec": {
        "containers": [
            {
                "name": "c",
                "image": "i",
                "env": [{"name": "A", "value": "1"}],
                "ports": [{"containerPort": 80}],
            },
            {"name": "s", "image": "j"},
        ],
        "tolerations": [{"key": "k"}],
    },
    "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Scheduled", "status": "True"}]},
}


def test_merge_patch_replaces_lists_and_deletes_nulls() -> None:
    """RFC 7386: null deletes a key, lists are replaced whole."""
    out = merge_patch(POD, {"metadata": {"labels": {"a": None}}, "spec": {"containers": [{"name": "n"}]}})
    assert out["metadata"]["labels"] == {"b": "2"} and out["spec"]["containers"] == [{"name": "n"}]


def test_strategic_merges_by_key() -> None:
    """Containers merge by name, env by name, ports by containerPort, conditions by type."""
    patch = {
        "spec": {
            "containers": [
                {"name": "c", "env": [{"name": "B", "value": "2"}], "ports": [{"containerPort": 81}]}
            ]
        },
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    out = strategic_merge(POD, patch)
    c = out["spec"]["containers"]
    assert [x["name"] for x in c] == ["c", "s"] and c[0]["image"] == "i"
    assert [e["name"] for e in c[0]["env"]] == ["A", "B"]
    assert [p["containerPort"] for p in c[0]["ports"]] == [80, 81]
    assert out["status"]["conditions"][0] == {"type": "Ready", "status": "True"}
    assert len(out["status"]["conditions"]) == 2


def test_strategic_directives() -> None:
    """$patch delete removes a list element, $patch replace replaces a map, unkeyed lists are replaced."""
    out = strategic_merge(
        POD,
        {
            "spec": {
                "containers": [{"name": "s", "$patch": "delete"}],
                "tolerations": [{"key": "other"}],
                "$setElementOrder/containers": [{"name": "c"}],
            },
            "metadata": {"labels": {"$patch": "replace", "z": "9"}, "finalizers": ["y"]},
        },
    )
    assert [c["name"] for c in out["spec"]["containers"]] == ["c"]
    assert out["spec"]["tolerations"] == [{"key": "other"}]
    assert out["metadata"]["labels"] == {"z": "9"}
    assert out["metadata"]["finalizers"] == ["x", "y"]
    assert "$setElementOrder/containers" not in out["spec"]


def test_apply_patch_by_content_type() -> None:
    """apply_patch dispatches on Content-Type and leaves the input untouched."""
    body = json.dumps({"spec": {"containers": [{"name": "c", "image": "new"}]}}).encode()
    assert len(apply_patch(POD, STRATEGIC, body)["spec"]["containers"]) == 2
    assert len(apply_patch(POD, MERGE_PATCH, body)["spec"]["containers"]) == 1
    ops = json.dumps([{"op": "replace", "path": "/metadata/name", "value": "q"}]).encode()
    assert apply_patch(POD, JSON_PATCH, ops)["metadata"]["name"] == "q"
    assert POD["metadata"]["name"] == "p"


def test_bad_patches_are_api_errors() -> None:
    """A failing JSON patch is 422, an unknown content type 415, a non-object merge patch 400."""
    with pytest.raises(ApiError) as err:
        apply_patch(POD, JSON_PATCH, b'[{"op": "remove", "path": "/nope"}]')
    assert err.value.code == 422
    with pytest.raises(ApiError) as err:
        apply_patch(POD, "text/plain", b"{}")
    assert err.value.code == 415
    with pytest.raises(ApiError) as err:
        apply_patch(POD, MERGE_PATCH, b"[1]")
    assert err.value.code == 400
