"""The Rasa NLU component: placed LAST in config.yml's pipeline, it has the final word on risk.

- level imminent/acute/concern → the intent becomes risk_imminent/risk_acute/risk_concern (the intent
  classifier's own guess and ranking stay in the parse data as `intent_before_safety`);
- level none but the intent classifier guessed a risk intent → the best non-risk intent instead, so
  the rules and the risk classifier decide what counts as risk, not the intent model's softmax;
- a means-adjacent message ("where can I buy pesticides") with no risk of its own → intent
  `means_adjacent`; rules with the sticky `risk_flagged` slot decide what it means (data/rules/crisis.yml);
- on a risk turn, the entity `risk_topic` names the crisis line that fits (slot → response variation);
- text starting with "/" is re-parsed by Rasa's RegexMessageHandler AFTER every component, so a
  risky "/greet@1.0 I want to die" would lose the override: the leading slashes are removed from the
  parsed text (the tracker still stores what the person typed: Rasa takes it from the UserMessage).
- the REST channel's crisis-first gate runs the rules on a message before Rasa handles it
  (bot/ops/priority.py); it does so through `screen`, and `process` reuses that verdict for the same
  exact text instead of running the rules again. The verdicts are kept in this process's memory only,
  never in the message or its metadata, so nothing a client sends can supply or lower one; the rules
  are a pure function of the text, so a verdict is right for any message with that text.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from typing import Any, Dict, List, Sequence

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_CONFIDENCE,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    EXTRACTOR,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.safety.classifier import DEFAULT_THRESHOLD, RiskClassifier
from bot.safety.data_files import (
    data_fingerprint,
    load_examples,
    load_nlu_levels,
    load_rule_documents,
    nlu_example_level,
)
from bot.safety.detector import RulesVerdict, SafetyDetector
from bot.safety.levels import RISK_INTENTS, Assessment
from bot.safety.normalize import Normalizer

logger = logging.getLogger(__name__)

ASSESSMENT_KEY = "safety"
ORIGINAL_INTENT_KEY = "intent_before_safety"
ORIGINAL_RANKING_KEY = "intent_ranking_before_safety"
MEANS_ADJACENT_INTENT = "means_adjacent"
TOPIC_ENTITY = "risk_topic"
RULES_FILE = "rules.json"
FALLBACK_INTENT = "nlu_fallback"
CONTROLLED_INTENTS = {*RISK_INTENTS.values(), MEANS_ADJACENT_INTENT}
LEVEL_OF_INTENT = {intent: level for level, intent in RISK_INTENTS.items()}
# Screened texts waiting for their parse (a screened message whose turn fails never takes its verdict).
SCREENED_LIMIT = 1024


class ScreenedTexts:
    """The rules' verdicts of texts the crisis-first gate screened, by exact text, until the parse takes them."""

    def __init__(self, limit: int = SCREENED_LIMIT) -> None:
        self.limit = limit
        self._verdicts: OrderedDict[str, RulesVerdict] = OrderedDict()

    def remember(self, text: str, verdict: RulesVerdict) -> None:
        self._verdicts[text] = verdict
        self._verdicts.move_to_end(text)
        while len(self._verdicts) > self.limit:
            self._verdicts.popitem(last=False)

    def take(self, texts: Sequence[str]) -> Dict[str, RulesVerdict]:
        return {text: verdict for text in texts if (verdict := self._verdicts.pop(text, None)) is not None}

    def __len__(self) -> int:
        return len(self._verdicts)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class SafetyClassifier(GraphComponent):
    """Risk rules + trained risk classifier; overrides the intent when a message expresses risk."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {
            # P(risk) at or above which the classifier alone raises a message to a risk level.
            "threshold": DEFAULT_THRESHOLD,
            # Also learn from the NLU examples: risk_* intents as risk, every other intent as `none`.
            "use_nlu_examples": True,
        }

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> str | None:
        # The rules and examples are read from data/safety, which Rasa's cache cannot see.
        return data_fingerprint()

    def __init__(
        self,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        detector: SafetyDetector | None = None,
    ) -> None:
        self.config = config
        self._model_storage = model_storage
        self._resource = resource
        self.detector = detector
        self.screened = ScreenedTexts()

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SafetyClassifier:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        documents = load_rule_documents()
        normalizer = Normalizer.from_dict(documents["normalize"])
        texts: List[str] = []
        levels: List[str] = []
        for text, level, _category in load_examples():
            texts.append(normalizer(text))
            levels.append(level)
        if self.config.get("use_nlu_examples", True):
            nlu_levels = load_nlu_levels()
            for example in training_data.intent_examples:
                text = example.get(TEXT)
                if text:
                    texts.append(normalizer(text))
                    levels.append(nlu_example_level(text, example.get(INTENT), nlu_levels))
        classifier = RiskClassifier.train(texts, levels, float(self.config["threshold"]))
        with self._model_storage.write_to(self._resource) as directory:
            classifier.save(directory)
            (directory / RULES_FILE).write_text(json.dumps(documents), encoding="utf-8")
        self.detector = SafetyDetector.from_documents(documents, classifier)
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> SafetyClassifier:
        with model_storage.read_from(resource) as directory:
            classifier = RiskClassifier.load(directory)
            documents = json.loads((directory / RULES_FILE).read_text(encoding="utf-8"))
        return cls(config, model_storage, resource, SafetyDetector.from_documents(documents, classifier))

    def process(self, messages: List[Message]) -> List[Message]:
        if self.detector is None:
            raise RuntimeError("SafetyClassifier used before training or loading")
        texts = [message.get(TEXT) or "" for message in messages]
        assessments = self.detector.assess_many(texts, self.screened.take(texts))
        for message, assessment in zip(messages, assessments, strict=True):
            apply_assessment(message, assessment)
        return messages

    def screen(self, text: str) -> str:
        """The rules' level for this text (no classifier: about 0.1 ms), kept for its parse to reuse."""
        if self.detector is None:
            raise RuntimeError("SafetyClassifier used before training or loading")
        verdict = self.detector.rules_verdicts([text])[0]
        self.screened.remember(text, verdict)
        return verdict.result.level


def apply_assessment(message: Message, assessment: Assessment) -> None:
    """Write the assessment into the parse data and decide the intent (see the module docstring)."""
    message.set(ASSESSMENT_KEY, assessment.as_dict(), add_to_output=True)
    original = message.get(INTENT) or {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0}
    ranking = list(message.get(INTENT_RANKING_KEY) or [])
    message.set(ORIGINAL_INTENT_KEY, original, add_to_output=True)
    message.set(ORIGINAL_RANKING_KEY, ranking, add_to_output=True)
    if assessment.is_risk:
        _override(message, RISK_INTENTS[assessment.level], ranking)
        _add_topic_entity(message, assessment.topic)
    elif assessment.means_adjacent:
        _override(message, MEANS_ADJACENT_INTENT, ranking)
    elif original.get(INTENT_NAME_KEY) in CONTROLLED_INTENTS:
        # The intent model guessed risk but the detector did not: take its best non-risk guess.
        remaining = [entry for entry in ranking if entry.get(INTENT_NAME_KEY) not in CONTROLLED_INTENTS]
        replacement = remaining[0] if remaining else {INTENT_NAME_KEY: FALLBACK_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0}
        message.set(INTENT, dict(replacement), add_to_output=True)
        message.set(INTENT_RANKING_KEY, remaining, add_to_output=True)
        return
    else:
        return
    _defuse_intent_payload(message)


def _override(message: Message, intent: str, ranking: List[Dict[str, Any]]) -> None:
    chosen = {INTENT_NAME_KEY: intent, PREDICTED_CONFIDENCE_KEY: 1.0}
    rest = [entry for entry in ranking if entry.get(INTENT_NAME_KEY) != intent]
    message.set(INTENT, chosen, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [chosen, *rest], add_to_output=True)


def _add_topic_entity(message: Message, topic: str) -> None:
    text = message.get(TEXT) or ""
    entity = {
        ENTITY_ATTRIBUTE_TYPE: TOPIC_ENTITY,
        ENTITY_ATTRIBUTE_VALUE: topic,
        ENTITY_ATTRIBUTE_START: 0,
        ENTITY_ATTRIBUTE_END: len(text),
        ENTITY_ATTRIBUTE_CONFIDENCE: 1.0,
        EXTRACTOR: SafetyClassifier.__name__,
    }
    others = [item for item in message.get(ENTITIES) or [] if item.get(ENTITY_ATTRIBUTE_TYPE) != TOPIC_ENTITY]
    message.set(ENTITIES, [*others, entity], add_to_output=True)


def _defuse_intent_payload(message: Message) -> None:
    """Keep RegexMessageHandler (runs after us) from replacing a risk intent with a typed '/intent'."""
    text = message.get(TEXT) or ""
    stripped = text.lstrip()
    if stripped.startswith("/"):
        message.set(TEXT, stripped.lstrip("/ \t"), add_to_output=True)
