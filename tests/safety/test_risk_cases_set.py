"""The hand-written evaluation set itself: well formed, big enough, every category covered, no repeats."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.safety.evaluation import run

SETS = [run.CASES_FILE, Path(run.CASES_FILE).with_name("fresh_cases.csv")]


def _normalised(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


@pytest.mark.parametrize("cases_file", SETS, ids=lambda path: path.name)
def test_every_category_has_enough_cases(cases_file: Path) -> None:
    counts = Counter(case.category for case in run.load_cases(cases_file))
    assert set(counts) == set(run.CATEGORY_LEVEL)
    for category, count in counts.items():
        minimum = 120 if category in run.NEGATIVE_CATEGORIES else 40
        assert count >= minimum, f"{category} has {count} cases, needs {minimum}"
    assert sum(counts.values()) >= 500


@pytest.mark.parametrize("cases_file", SETS, ids=lambda path: path.name)
def test_no_message_appears_twice(cases_file: Path) -> None:
    repeated = [text for text, n in Counter(_normalised(c.text) for c in run.load_cases(cases_file)).items() if n > 1]
    assert repeated == []


def test_the_two_sets_are_mostly_different_messages() -> None:
    # Two authors wrote them without seeing each other's; short everyday messages ("do you take medicaid")
    # coincide naturally (20 of ~1,100 did), but a copied set would share far more.
    first, second = ({_normalised(case.text) for case in run.load_cases(path)} for path in SETS)
    assert len(first & second) <= 0.03 * min(len(first), len(second))
