"""Unit tests of label and field selector parsing."""

from __future__ import annotations

import pytest

from lab.apiserver.errors import ApiError
from lab.apiserver.selectors import field_selector, label_selector

OBJ = {
    "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web", "tier": "fe"}},
    "spec": {"nodeName": "n1"},
    "status": {"phase": "Running"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("app in (web,db)", True),
        ("app notin (web)", False),
        ("tier", True),
        ("!tier", False),
        ("!missing", True),
        ("app=web,tier=fe", True),
        ("app=web,tier=be", False),
        ("missing!=x", True),
    ],
)
def test_label_selector(text: str, expected: bool) -> None:
    """Each label selector operator matches as Kubernetes defines it."""
    pred = label_selector(text)
    assert pred is not None and pred(OBJ) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metadata.name=p", True),
        ("metadata.namespace!=ns", False),
        ("spec.nodeName=n1", True),
        ("status.phase==Running,spec.nodeName=n2", False),
        ("spec.unschedulable=false", True),
        ("involvedObject.name=x", False),
    ],
)
def test_field_selector(text: str, expected: bool) -> None:
    """Field selectors compare dotted paths, with absent booleans read as false."""
    pred = field_selector(text)
    assert pred is not None and pred(OBJ) is expected


def test_bad_selector_is_400() -> None:
    """An unparseable selector is a 400 BadRequest."""
    with pytest.raises(ApiError) as err:
        label_selector("app in web")
    assert err.value.code == 400
