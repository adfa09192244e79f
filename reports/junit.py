"""JUnit XML for CI systems: one test suite per run, one test case per hypothesis expectation.

Confirmed → pass, refuted → ``<failure>``, inconclusive → ``<skipped>`` (the run could not decide it).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from reports.results import RunResults


def junit_xml(res: RunResults) -> str:
    """The JUnit XML document for one run's expectations."""
    cases = res.expectations
    failures = sum(e.result.verdict == "refuted" for e in cases)
    skipped = sum(e.result.verdict == "inconclusive" for e in cases)
    suites = ET.Element("testsuites", name="gameday", tests=str(len(cases)), failures=str(failures))
    suite = ET.SubElement(suites, "testsuite", name=res.campaign, tests=str(len(cases)), failures=str(failures),
                          errors="0", skipped=str(skipped), timestamp=res.started_at.isoformat())
    props = ET.SubElement(suite, "properties")
    for k, v in (("run_id", res.run_id), ("fingerprint", res.fingerprint), ("status", res.status),
                 ("verdict", res.overall.verdict), ("verdict_reason", res.overall.reason)):
        ET.SubElement(props, "property", name=k, value=v)
    for e in cases:
        r = e.result
        case = ET.SubElement(suite, "testcase", classname=f"gameday.{res.campaign}", name=f"[{r.index + 1}] {r.text}")
        if r.verdict == "refuted":
            ET.SubElement(case, "failure", message=f"refuted: {r.reason}", type="refuted").text = r.reason
        elif r.verdict == "inconclusive":
            ET.SubElement(case, "skipped", message=f"inconclusive: {r.reason}")
        ET.SubElement(case, "system-out").text = "\n".join(
            f"{s.stage or s.window}: measured={s.measured} threshold={s.threshold} n={s.n} {s.verdict}: {s.reason}"
            for s in r.stages)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
