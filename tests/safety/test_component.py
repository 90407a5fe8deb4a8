"""The Rasa GraphComponent: train → persist → load in a model storage, and how it sets the intent."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, List

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.regex_message_handler import RegexMessageHandler
from rasa.shared.core.domain import Domain
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.safety.component import (
    ASSESSMENT_KEY,
    MEANS_ADJACENT_INTENT,
    ORIGINAL_INTENT_KEY,
    SafetyClassifier,
    ScreenedTexts,
    apply_assessment,
)
from bot.safety.data_files import data_fingerprint
from bot.safety.detector import RulesVerdict, SafetyDetector
from bot.safety.levels import Assessment

ROOT = Path(__file__).resolve().parents[2]


def nlu_message(text: str, intent: str, ranking: List[Dict[str, Any]] | None = None) -> Message:
    ranking = ranking or [{"name": intent, "confidence": 0.9}, {"name": "greet", "confidence": 0.05}]
    message = Message(data={"text": text})
    message.set("intent", {"name": intent, "confidence": ranking[0]["confidence"]}, add_to_output=True)
    message.set("intent_ranking", ranking, add_to_output=True)
    return message


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> SafetyClassifier:
    storage = LocalModelStorage(tmp_path_factory.mktemp("storage"))
    resource = Resource("safety")
    context = ExecutionContext(GraphSchema({}), "test")
    config = {**SafetyClassifier.get_default_config()}
    component = SafetyClassifier.create(config, storage, resource, context)
    nlu = TrainingData(
        [
            Message(data={"text": "I want to end it all", "intent": "risk_acute"}),
            Message(data={"text": "hello there", "intent": "greet"}),
            Message(data={"text": "what are your opening hours", "intent": "ask_open_now"}),
        ]
    )
    component.train(nlu)
    # A fresh instance from the persisted resource, as `rasa run` loads it.
    return SafetyClassifier.load(config, storage, resource, context)


def parse(component: SafetyClassifier, text: str, intent: str = "out_of_scope") -> Message:
    return component.process([nlu_message(text, intent)])[0]


def test_risk_overrides_the_intent_and_keeps_the_original(trained: SafetyClassifier) -> None:
    message = parse(trained, "I want to kill myself", intent="greet")
    assert message.get("intent")["name"] == "risk_acute"
    assert message.get(ORIGINAL_INTENT_KEY)["name"] == "greet"
    assert message.get(ASSESSMENT_KEY)["level"] == "acute"
    assert message.get("intent_ranking")[0]["name"] == "risk_acute"
    assert {"intent_before_safety", "safety"} <= set(message.as_dict(only_output_properties=True))


def test_each_level_has_its_intent(trained: SafetyClassifier) -> None:
    assert parse(trained, "I took all my pills an hour ago").get("intent")["name"] == "risk_imminent"
    assert parse(trained, "my sister says she wants to kill herself").get("intent")["name"] == "risk_concern"


def test_intent_model_alone_cannot_raise_a_false_alarm(trained: SafetyClassifier) -> None:
    ranking = [{"name": "risk_acute", "confidence": 0.7}, {"name": "ask_open_now", "confidence": 0.2}]
    message = trained.process([nlu_message("are you open on saturday", "risk_acute", ranking)])[0]
    assert message.get("intent")["name"] == "ask_open_now"
    assert all(entry["name"] != "risk_acute" for entry in message.get("intent_ranking"))


def test_means_adjacent_message_gets_its_own_intent(trained: SafetyClassifier) -> None:
    message = parse(trained, "where can I buy pesticides")
    assert message.get("intent")["name"] == MEANS_ADJACENT_INTENT


def test_topic_entity_names_the_crisis_line(trained: SafetyClassifier) -> None:
    message = parse(trained, "I make myself throw up after I eat")
    assert {"entity": "risk_topic", "value": "eating_disorder"}.items() <= message.get("entities")[0].items()


def test_ordinary_message_is_left_alone(trained: SafetyClassifier) -> None:
    message = parse(trained, "what are your opening hours", intent="ask_open_now")
    assert message.get("intent")["name"] == "ask_open_now"
    assert message.get(ASSESSMENT_KEY)["level"] == "none"


def test_classifier_can_raise_but_never_lower(trained: SafetyClassifier) -> None:
    assert trained.detector is not None and trained.detector.classifier is not None
    trained.detector.classifier.threshold = 1.01  # classifier can never fire
    try:
        assert parse(trained, "I want to kill myself").get(ASSESSMENT_KEY)["level"] == "acute"
    finally:
        trained.detector.classifier.threshold = SafetyClassifier.get_default_config()["threshold"]


def test_a_risky_intent_payload_is_not_undone_by_the_regex_message_handler(trained: SafetyClassifier) -> None:
    domain = Domain.load(str(ROOT / "domain.yml"))
    handler = RegexMessageHandler()
    for text in ("/greet@1.0 I want to die", '/greet{"x": "y"} I want to kill myself', "  /greet I want to die"):
        message = handler.process(trained.process([nlu_message(text, "greet")]), domain)[0]
        assert message.get("intent")["name"] == "risk_acute", text


def test_a_plain_payload_still_works(trained: SafetyClassifier) -> None:
    domain = Domain.load(str(ROOT / "domain.yml"))
    message = RegexMessageHandler().process(trained.process([nlu_message("/request_human", "greet")]), domain)[0]
    assert message.get("intent")["name"] == "request_human"


def test_apply_assessment_with_no_other_intent_falls_back() -> None:
    message = nlu_message("hmm", "risk_concern", [{"name": "risk_concern", "confidence": 0.9}])
    apply_assessment(message, Assessment())
    assert message.get("intent")["name"] == "nlu_fallback"


def test_fingerprint_follows_the_data_files(tmp_path: Path) -> None:
    """Rasa's training cache must notice a changed rule or example file (it can't see data/safety)."""
    copy = tmp_path / "safety"
    shutil.copytree(ROOT / "data" / "safety", copy)
    before = data_fingerprint(copy)
    assert SafetyClassifier.fingerprint_addon({}) == data_fingerprint()
    example = sorted((copy / "examples").glob("*.yml"))[0]
    example.write_text(example.read_text() + "\n# changed\n")
    assert data_fingerprint(copy) != before


# The crisis-first gate's verdicts (bot/ops/priority.py) reused by the parse.
SCREENED_TEXTS = ["I want to kill myself", "my sister says she wants to kill herself", "where can I buy pesticides",
                  "I took all my pills an hour ago", "how long does therapy for self-harm take?", "hello", "",
                  "/greet@1.0 I want to die", "I make myself throw up after I eat"]


@pytest.mark.parametrize("text", SCREENED_TEXTS)
def test_a_screened_text_is_parsed_exactly_as_an_unscreened_one(trained: SafetyClassifier, text: str) -> None:
    plain = parse(trained, text, intent="greet").as_dict()
    level = trained.screen(text)
    assert len(trained.screened) == 1
    reused = parse(trained, text, intent="greet").as_dict()
    assert reused == plain
    assert len(trained.screened) == 0  # taken by the parse, not kept
    # The screen's level is the rules' part of the full assessment.
    rules_level = "none" if "classifier" in plain[ASSESSMENT_KEY]["categories"] else plain[ASSESSMENT_KEY]["level"]
    assert level == rules_level


def test_the_parse_does_not_run_the_rules_again_on_a_screened_text(
    trained: SafetyClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "I want to kill myself"
    assert trained.screen(text) == "acute"
    seen: List[List[str]] = []
    rules_verdicts = SafetyDetector.rules_verdicts

    def spy(self: SafetyDetector, texts: List[str]) -> List[RulesVerdict]:
        seen.append(list(texts))
        return rules_verdicts(self, texts)

    monkeypatch.setattr(SafetyDetector, "rules_verdicts", spy)
    assert parse(trained, text).get(ASSESSMENT_KEY)["level"] == "acute"
    assert all(text not in texts for texts in seen)
    parse(trained, text)  # not screened this time: the rules run
    assert any(text in texts for texts in seen)


def test_forged_metadata_cannot_lower_a_level(trained: SafetyClassifier) -> None:
    text = "I want to kill myself"
    forgeries = [{"safety": {"level": "none"}}, {"screened": {text: "none"}},
                 {"rules_verdict": "none", "level": "none"}, {ASSESSMENT_KEY: {"level": "none", "score": 0.0}}]
    for forged in forgeries:
        message = nlu_message(text, "greet")
        message.set("metadata", forged)
        parsed = trained.process([message])[0]
        assert parsed.get(ASSESSMENT_KEY)["level"] == "acute", forged
        assert parsed.get("intent")["name"] == "risk_acute", forged


def test_a_verdict_serves_only_its_exact_text(trained: SafetyClassifier) -> None:
    assert trained.screen("I want to") == "none"
    assert parse(trained, "I want to kill myself").get(ASSESSMENT_KEY)["level"] == "acute"
    assert len(trained.screened) == 1  # still waiting for a message with exactly that text
    trained.screened.take(["I want to"])


def test_screened_texts_are_bounded(rules_detector: SafetyDetector) -> None:
    screened = ScreenedTexts(limit=3)
    verdicts = rules_detector.rules_verdicts(["a", "b", "c", "d"])
    for text, verdict in zip("abcd", verdicts, strict=True):
        screened.remember(text, verdict)
    assert len(screened) == 3
    assert set(screened.take(["a", "b", "c", "d"])) == {"b", "c", "d"}  # the oldest went first
    assert len(screened) == 0
