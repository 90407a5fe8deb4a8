"""The level confusion printed by `make safety-dev-eval`, and the extra weight of imminent examples."""

from __future__ import annotations

from typing import List, Tuple

import pytest

from bot.safety import classifier as classifier_module
from bot.safety.classifier import RiskClassifier
from bot.safety.dev_eval import format_confusion, level_confusion


def test_level_confusion_counts_risk_rows_only() -> None:
    labelled = ["imminent", "imminent", "imminent", "acute", "none", "concern"]
    predicted = ["imminent", "acute", "none", "acute", "acute", "concern"]
    table = level_confusion(labelled, predicted)
    assert set(table) == {"concern", "acute", "imminent"}
    assert table["imminent"] == {"none": 1, "concern": 0, "acute": 1, "imminent": 1}
    assert table["acute"]["acute"] == 1 and sum(table["acute"].values()) == 1


def test_format_confusion_gives_flagged_and_exact_rates() -> None:
    table = level_confusion(["imminent"] * 4, ["imminent", "imminent", "acute", "none"])
    imminent_row = next(line for line in format_confusion("t", table) if line.strip().startswith("imminent"))
    assert "75.0%" in imminent_row and "50.0%" in imminent_row


def small_training_set() -> Tuple[List[str], List[str]]:
    texts = [
        "i took all the pills tonight",
        "goodbye i am doing it now",
        "i want to die",
        "i keep thinking about ending it",
        "i cut myself last week",
        "my friend self harms",
        "what are your opening hours",
        "do you take my insurance",
        "hello there",
        "can i book a session on friday",
        "is there parking near the office",
        "how much does therapy cost",
    ]
    levels = ["imminent", "imminent", "acute", "acute", "acute", "concern"] + ["none"] * 6
    return texts, levels


def imminent_scores(model: RiskClassifier, text: str) -> Tuple[float, float]:
    """P(risk) and the level model's P(imminent) for one text."""
    matrix = model.features.transform([text])
    risk = model.binary.predict_proba(matrix)[0, list(model.binary.classes_).index(True)]
    imminent = model.leveler.predict_proba(matrix)[0, list(model.leveler.classes_).index("imminent")]
    return float(risk), float(imminent)


def test_imminent_examples_weigh_more_in_both_models(monkeypatch: pytest.MonkeyPatch) -> None:
    texts, levels = small_training_set()
    weighted = imminent_scores(RiskClassifier.train(texts, levels), "goodbye, tonight i am doing it")
    monkeypatch.setattr(classifier_module, "IMMINENT_WEIGHT_RISK", 1.0)
    monkeypatch.setattr(classifier_module, "IMMINENT_WEIGHT_LEVEL", 1.0)
    plain = imminent_scores(RiskClassifier.train(texts, levels), "goodbye, tonight i am doing it")
    assert classifier_module.IMMINENT_WEIGHT_RISK == 1.0  # the patch took effect for the second model
    assert weighted[0] > plain[0], "imminent examples should raise P(risk) for imminent-like text"
    assert weighted[1] > plain[1], "imminent examples should raise the level model's P(imminent)"
