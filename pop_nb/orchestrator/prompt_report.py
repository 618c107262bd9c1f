"""How ``pop test`` reports: a failed check as lines people read, and the whole run as JUnit XML."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pop_nb.orchestrator.prompt_tests import Failure, Report


def junit_xml(report: Report) -> str:
    """The report as JUnit XML, for CI systems: one testcase per test, a failure per check that failed,
    an error per infrastructure stop."""
    from xml.etree import ElementTree as ET

    suite = ET.Element(
        "testsuite",
        name=f"pop-test.{report.pipeline}",
        tests=str(len(report.outcomes)),
        failures=str(report.count("failed")),
        errors=str(report.count("error")),
        time=f"{report.seconds:.2f}",
    )
    for outcome in report.outcomes:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"pop.{report.pipeline}",
            name=outcome.id,
            time=f"{outcome.seconds or 0:.2f}",
        )
        if outcome.result == "error":
            ET.SubElement(case, "error", message=outcome.error or "").text = outcome.error
        for failure in outcome.failures:
            ET.SubElement(case, "failure", message=failure.check).text = failure_text(failure)
        ET.SubElement(
            case, "system-out"
        ).text = f"job {outcome.job} ({outcome.state}), ${outcome.cost_usd:.6f}"
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def failure_text(failure: Failure) -> str:
    """A failed check as lines: the check, then expected, actual, the task, the notebook to open."""
    lines = [
        f"{failure.check}",
        f"  expected: {_shown(failure.expected)}",
        f"  actual:   {_shown(failure.actual)}",
    ]
    if failure.task:
        lines.append(f"  task:     {failure.task}")
    if failure.notebook:
        lines.append(f"  open:     {failure.notebook}")
    return "\n".join(lines)


def _shown(value: Any, limit: int = 600) -> str:
    """A value on one line: text as it is unless it has line breaks (then as JSON, like anything else)."""
    plain = isinstance(value, str) and "\n" not in value
    text = value if plain else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"
