"""The hand-written evaluation set itself: well formed, big enough, every category covered, no repeats."""

from __future__ import annotations

import re
from collections import Counter

from tests.safety.evaluation import run


def test_every_category_has_enough_cases() -> None:
    counts = Counter(case.category for case in run.load_cases())
    assert set(counts) == set(run.CATEGORY_LEVEL)
    for category, count in counts.items():
        minimum = 120 if category in run.NEGATIVE_CATEGORIES else 40
        assert count >= minimum, f"{category} has {count} cases, needs {minimum}"
    assert sum(counts.values()) >= 500


def test_no_message_appears_twice() -> None:
    def normalised(text: str) -> str:
        return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()

    repeated = [text for text, n in Counter(normalised(c.text) for c in run.load_cases()).items() if n > 1]
    assert repeated == []
