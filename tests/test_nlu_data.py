"""The NLU training data and the held-out evaluation set stay apart and cover every topic intent."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Dict, List

import yaml
from rasa.shared.core.domain import Domain

from bot.safety.component import MEANS_ADJACENT_INTENT
from bot.safety.levels import RISK_INTENTS
from bot.topics import load_topics

ROOT = Path(__file__).resolve().parent.parent
EVAL_FILE = ROOT / "tests" / "nlu_eval" / "paraphrases.yml"
# A second held-out set, never used for tuning (see its header).
FRESH_FILE = ROOT / "tests" / "nlu_eval" / "fresh.yml"
DOMAIN = Domain.load(str(ROOT / "domain.yml"))
MIN_EVAL_EXAMPLES = 8


def examples_by_intent(*files: Path) -> Dict[str, List[str]]:
    found: Dict[str, List[str]] = {}
    for path in files:
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
            if "intent" not in block:
                continue
            lines = [line.strip()[2:].strip() for line in block["examples"].splitlines() if line.strip()]
            found.setdefault(block["intent"], []).extend(lines)
    return found


def normalised(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).strip()


TRAINING = examples_by_intent(*sorted((ROOT / "data" / "nlu").glob("*.yml")))
EVALUATION = examples_by_intent(EVAL_FILE)
FRESH = examples_by_intent(FRESH_FILE)


def test_no_evaluation_example_is_in_the_training_data() -> None:
    trained = {normalised(text) for texts in TRAINING.values() for text in texts}
    held_out = [text for texts in (*EVALUATION.values(), *FRESH.values()) for text in texts]
    leaked = [text for text in held_out if normalised(text) in trained]
    assert not leaked, f"evaluation examples also in data/nlu: {leaked}"


def test_every_topic_intent_has_enough_evaluation_paraphrases() -> None:
    topics = load_topics()
    for area, intents in topics.areas.items():
        for intent in intents:
            assert len(EVALUATION.get(intent, [])) >= MIN_EVAL_EXAMPLES, f"{area}/{intent}"


def test_every_evaluated_intent_is_trained_and_in_the_domain() -> None:
    for intent in EVALUATION:
        assert intent in DOMAIN.intents, intent
        assert len(TRAINING.get(intent, [])) >= 10, f"{intent} has too few training examples"


# Answers inside the booking form ("inform") may repeat a topic word such as "DBT" on purpose: the
# form, not the classifier's first guess, decides what they mean there.
FORM_ANSWERS = {"inform"}


def test_no_example_is_trained_for_two_intents() -> None:
    owners: Counter[str] = Counter()
    for intent, texts in TRAINING.items():
        if intent in FORM_ANSWERS:
            continue
        owners.update({normalised(text) for text in texts})
    assert not [text for text, count in owners.items() if count > 1]


def test_topic_labels_name_domain_intents_and_areas_cover_the_content_intents() -> None:
    topics = load_topics()
    assert set(topics.labels) <= set(DOMAIN.intents)
    in_areas = {intent for intents in topics.areas.values() for intent in intents}
    not_evaluated = set(yaml.safe_load((ROOT / "data" / "topics.yml").read_text())["not_evaluated"])
    # Set only by the safety component, never trained as topics.
    risk = set(RISK_INTENTS.values()) | {MEANS_ADJACENT_INTENT}
    built_in = {"nlu_fallback", "restart", "back", "session_start"}
    unassigned = set(DOMAIN.intents) - in_areas - not_evaluated - risk - built_in
    assert unassigned == set(), "every intent belongs to a topic area"
