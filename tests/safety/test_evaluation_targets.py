"""The detector on the hand-written evaluation set (needs the trained model).

The issue's targets are checked by `make safety-eval`, which fails while any is missed; they are not
all met yet (see README, "Safety evaluation"). This test guards what has been reached: no check may get
worse than the figure recorded in floor.yml, and the floor is only ever raised.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.safety.evaluation import run

EVALUATION = Path(__file__).parent / "evaluation"
# Each held-out set with its own floor: floor.yml for risk_cases.csv, floor_fresh.yml for fresh_cases.csv.
SETS = [("risk_cases.csv", "floor.yml"), ("fresh_cases.csv", "floor_fresh.yml")]


@pytest.mark.e2e
@pytest.mark.parametrize("cases_file, floor_file", SETS)
def test_detector_does_not_fall_below_the_recorded_floor(cases_file: str, floor_file: str) -> None:
    floors = yaml.safe_load((EVALUATION / floor_file).read_text(encoding="utf-8"))["checks"]
    report = run.evaluate(run.load_cases(EVALUATION / cases_file))
    checks = report.checks()
    assert {check.name for check in checks} == set(floors), "floor.yml must list every check"
    worse = [
        f"{check.name}: {check.measured:.1%} (floor {floors[check.name]:.1%})"
        for check in checks
        if (check.measured < floors[check.name] - 1e-9)
        if check.higher_is_better
    ] + [
        f"{check.name}: {check.measured:.1%} (ceiling {floors[check.name]:.1%})"
        for check in checks
        if not check.higher_is_better and check.measured > floors[check.name] + 1e-9
    ]
    assert worse == [], "\n" + "\n".join(worse) + "\n" + run.format_report(report, show_misses=True)

