"""The detector on the hand-written evaluation set (needs the trained model).

The issue's targets are checked by `make safety-eval`, which fails while any is missed; they are not
all met yet (see README, "Safety evaluation"). This test guards what has been reached: no check may get
worse than the figure recorded in floor.yml, and the floor is only ever raised.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.safety.evaluation import run

EVALUATION = Path(__file__).parent / "evaluation"
# Each held-out set with its own floor: floor.yml for risk_cases.csv, floor_fresh.yml for fresh_cases.csv,
# floor_blind.yml for blind_cases.csv (the third set, written blind by an independent evaluator).
SETS = [("risk_cases.csv", "floor.yml"), ("fresh_cases.csv", "floor_fresh.yml"), ("blind_cases.csv", "floor_blind.yml")]
# The blind set's agreed shape: 60 messages per risk category, 300 per negative category.
BLIND_RISK_SIZE = 60
BLIND_NEGATIVE_SIZE = 300


def test_blind_set_is_valid_complete_and_free_of_repeats() -> None:
    # load_cases rejects unknown categories, a level that does not match its category, and multi-line text.
    cases = run.load_cases(EVALUATION / "blind_cases.csv")
    sizes = Counter(case.category for case in cases)
    expected = {
        category: BLIND_NEGATIVE_SIZE if category in run.NEGATIVE_CATEGORIES else BLIND_RISK_SIZE
        for category in run.CATEGORY_LEVEL
    }
    assert dict(sizes) == expected
    # The same message twice would count one behaviour twice; compare case- and space-insensitively.
    normalised = Counter(" ".join(case.text.lower().split()) for case in cases)
    assert [text for text, count in normalised.items() if count > 1] == []


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

