"""The union of rules and classifier: the classifier raises levels, except a bare method-adjacent message."""

from __future__ import annotations

from typing import List, Sequence

from bot.safety.classifier import Prediction
from bot.safety.data_files import load_rule_documents
from bot.safety.detector import MEANS_ADJACENT_THRESHOLD, SafetyDetector


class FixedClassifier:
    """Stands in for the trained classifier: every message gets the same prediction."""

    def __init__(self, probability: float, level: str) -> None:
        self.prediction = Prediction(probability, level)

    def predict(self, normalized_texts: Sequence[str]) -> List[Prediction]:
        return [self.prediction for _ in normalized_texts]


def detector(probability: float, level: str = "acute") -> SafetyDetector:
    return SafetyDetector.from_documents(load_rule_documents(), FixedClassifier(probability, level))  # type: ignore[arg-type]


def test_classifier_raises_an_ordinary_message() -> None:
    assessment = detector(0.9).assess("what are your opening hours")
    assert assessment.level == "acute"


def test_a_bare_method_adjacent_message_is_left_to_the_sticky_risk_rules() -> None:
    held = detector(MEANS_ADJACENT_THRESHOLD - 0.01).assess("where can I buy pesticides")
    assert (held.level, held.means_adjacent) == ("none", True)
    assert "classifier:held:means_adjacent" in held.reasons
    raised = detector(MEANS_ADJACENT_THRESHOLD).assess("where can I buy pesticides")
    assert raised.level == "acute"


def test_classifier_never_lowers_a_rule_level() -> None:
    assessment = detector(0.1, "none").assess("I want to kill myself")
    assert assessment.level == "acute"
