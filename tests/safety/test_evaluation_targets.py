"""The detector meets the issue's targets on the hand-written evaluation set (needs the trained model)."""

from __future__ import annotations

import pytest

from tests.safety.evaluation import run


@pytest.mark.e2e
def test_detector_meets_the_safety_targets() -> None:
    report = run.evaluate(run.load_cases())
    missed = report.failed_checks()
    assert missed == [], "\n" + run.format_report(report, show_misses=True)
