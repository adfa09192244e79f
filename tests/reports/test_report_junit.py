"""reports.junit: one test case per expectation; refuted fails, inconclusive is skipped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from reports.frames import load_run
from reports.junit import junit_xml
from reports.results import analyse


@pytest.mark.parametrize("scenario", ["confirmed", "refuted", "unverified"])
def test_cases_mirror_verdicts(synthetic: dict[str, Path], scenario: str) -> None:
    """Each expectation is a test case whose failure/skipped element matches its verdict."""
    res = analyse(load_run(synthetic[scenario]))
    root = ET.fromstring(junit_xml(res))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == res.campaign
    cases = suite.findall("testcase")
    assert len(cases) == len(res.expectations)
    for case, e in zip(cases, res.expectations, strict=True):
        assert e.result.text in (case.get("name") or "")
        assert (case.find("failure") is not None) == (e.result.verdict == "refuted")
        assert (case.find("skipped") is not None) == (e.result.verdict == "inconclusive")
    assert suite.get("failures") == str(sum(e.result.verdict == "refuted" for e in res.expectations))
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["verdict"] == res.overall.verdict
