"""NLU examples that disclose self-harm reach the safety classifier and the dev-eval at their risk level."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, List

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.safety import component as component_module
from bot.safety.component import SafetyClassifier
from bot.safety.data_files import LEVEL_OF_INTENT, data_fingerprint, load_nlu_levels, nlu_example_level
from bot.safety.dev_eval import nlu_examples

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def nlu_intent_of() -> dict[str, str]:
    data = load_data(str(ROOT / "data" / "nlu"))
    return {example.get("text"): example.get("intent") for example in data.intent_examples}


def test_every_listed_text_is_a_non_risk_nlu_example(nlu_intent_of: dict[str, str]) -> None:
    levels = load_nlu_levels()
    assert len(levels) > 100
    missing = [text for text in levels if text not in nlu_intent_of]
    assert missing == []
    assert not [text for text in levels if nlu_intent_of[text] in LEVEL_OF_INTENT]
    assert set(levels.values()) <= {"concern", "acute"}


def test_dev_eval_sees_disclosures_at_their_level_and_topic_questions_as_none() -> None:
    labelled = {text: level for text, level, _category in nlu_examples()}
    assert labelled["my son is cutting himself"] == "concern"
    assert labelled["i'm scared to tell my therapist i self harm"] == "concern"
    assert labelled["my self-harm urges are linked to ocd"] == "acute"
    # a question about the topic, with no one disclosed, stays none
    assert labelled["how can i help a friend who self harms"] == "none"
    assert labelled["signs my daughter is self harming"] == "none"


def test_risk_intents_keep_their_own_level() -> None:
    assert nlu_example_level("whatever", "risk_imminent", {"whatever": "concern"}) == "imminent"
    assert nlu_example_level("hello", "greet", {}) == "none"


def test_training_gives_the_classifier_the_listed_level(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: List[Any] = []

    def capture(texts: List[str], levels: List[str], threshold: float) -> None:
        seen.extend(zip(texts[-3:], levels[-3:], strict=True))
        raise RuntimeError("stop after seeing the labels")

    monkeypatch.setattr(component_module.RiskClassifier, "train", capture)
    context = ExecutionContext(GraphSchema({}), "test")
    config = SafetyClassifier.get_default_config()
    component = SafetyClassifier.create(config, LocalModelStorage(tmp_path), Resource("safety"), context)
    nlu = TrainingData(
        [
            Message(data={"text": "my son is cutting himself", "intent": "ask_loved_one_self_harms"}),
            Message(data={"text": "how can i help a friend who self harms", "intent": "ask_loved_one_self_harms"}),
            Message(data={"text": "i want to end it all", "intent": "risk_acute"}),
        ]
    )
    with pytest.raises(RuntimeError):
        component.train(nlu)
    assert [level for _text, level in seen] == ["concern", "none", "acute"]


def test_fingerprint_follows_the_nlu_levels_file(tmp_path: Path) -> None:
    copy = tmp_path / "safety"
    shutil.copytree(ROOT / "data" / "safety", copy)
    before = data_fingerprint(copy)
    levels_file = copy / "nlu_levels.yml"
    levels_file.write_text(levels_file.read_text() + "\n# changed\n")
    assert data_fingerprint(copy) != before
