"""The floor writer only ever tightens a floor, and rounds to the safe side."""

from __future__ import annotations

from tests.safety.evaluation.floor import merged, safe_side
from tests.safety.evaluation.run import TargetCheck


def test_recall_is_rounded_down_and_false_crisis_up() -> None:
    assert safe_side(TargetCheck("recall x", 0.93666, 0.97, True)) == 0.936
    assert safe_side(TargetCheck("false crisis y", 0.01234, 0.01, False)) == 0.013
    assert safe_side(TargetCheck("recall z", 0.95, 0.97, True)) == 0.95


def test_a_floor_is_raised_but_never_lowered() -> None:
    old = {"recall a": 0.9, "recall b": 0.9, "false crisis c": 0.05, "false crisis d": 0.05}
    checks = [
        TargetCheck("recall a", 0.95, 0.97, True),  # improved: raised
        TargetCheck("recall b", 0.80, 0.97, True),  # worse: the old floor stays (the e2e test then fails)
        TargetCheck("false crisis c", 0.02, 0.01, False),  # improved: lowered ceiling
        TargetCheck("false crisis d", 0.09, 0.01, False),  # worse: the old ceiling stays
        TargetCheck("recall new", 0.5, 0.97, True),  # a check without a floor gets one
    ]
    assert merged(old, checks) == {
        "recall a": 0.95, "recall b": 0.9, "false crisis c": 0.02, "false crisis d": 0.05, "recall new": 0.5,
    }
