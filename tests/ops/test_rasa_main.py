"""The adjustments bot/ops/rasa_main.py makes to Rasa change its speed, never its answers."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest
import scipy.sparse
from rasa.core.policies.rule_policy import RulePolicy
from rasa.engine.exceptions import GraphRunError
from rasa.engine.graph import ExecutionContext, GraphComponent, GraphSchema, SchemaNode
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.core.constants import SHOULD_NOT_BE_SET
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, FEATURE_TYPE_SEQUENCE, INTENT, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.ops.rasa_main import (
    build_intent_rows_in_one_stack,
    index_rule_lookups,
    keep_intent_coefficients_column_major,
    run_graphs_without_dask,
)

FEATURES = 300


def message(rng: np.random.Generator, intent: str | None) -> Message:
    counts = scipy.sparse.random(1, FEATURES, density=0.05, format="coo", random_state=rng) * 3
    data = {TEXT: "some text"} if intent is None else {TEXT: "some text", INTENT: intent}
    result = Message(data=data)
    result.add_features(Features(counts, FEATURE_TYPE_SENTENCE, TEXT, "counts"))
    result.add_features(Features(scipy.sparse.coo_matrix((2, FEATURES)), FEATURE_TYPE_SEQUENCE, TEXT, "counts"))
    # A second featurizer with integer counts, and a dense one: the row stacks all three.
    chars = scipy.sparse.random(1, 50, density=0.2, format="coo", random_state=rng, dtype=np.int64)
    result.add_features(Features(chars, FEATURE_TYPE_SENTENCE, TEXT, "chars"))
    result.add_features(Features(rng.random((1, 4)), FEATURE_TYPE_SENTENCE, TEXT, "dense"))
    return result


@pytest.fixture
def original_load() -> Iterator[object]:
    rasa_load = LogisticRegressionClassifier.__dict__["load"]
    rasa_create_x = LogisticRegressionClassifier.__dict__["_create_X"]
    yield rasa_load
    LogisticRegressionClassifier.load = rasa_load  # undo the patches for the other tests
    LogisticRegressionClassifier._create_X = rasa_create_x


def intent_rankings(storage: LocalModelStorage, resource: Resource, messages: List[Message]) -> List[list]:
    context = ExecutionContext(GraphSchema({}), node_name="intents")
    component = LogisticRegressionClassifier.load({}, storage, resource, context)
    processed = component.process([Message(data=dict(m.data), features=list(m.features)) for m in messages])
    return [m.get("intent_ranking") for m in processed]


def test_faster_intent_classifier_gives_the_same_probabilities(tmp_path: Path, original_load: object) -> None:
    rng = np.random.default_rng(7)
    training = TrainingData([message(rng, f"intent_{index % 6}") for index in range(240)])
    storage, resource = LocalModelStorage(tmp_path), Resource("intents")
    context = ExecutionContext(GraphSchema({}), node_name="intents")
    trained = LogisticRegressionClassifier.create(
        {**LogisticRegressionClassifier.get_default_config(), "random_state": 7}, storage, resource, context
    )
    trained.train(training)
    unseen = [message(rng, None) for _ in range(25)]

    before = intent_rankings(storage, resource, unseen)
    rasa_create_x = LogisticRegressionClassifier.__dict__["_create_X"]
    rasa_rows = rasa_create_x(trained, unseen)
    keep_intent_coefficients_column_major()
    build_intent_rows_in_one_stack()
    after = intent_rankings(storage, resource, unseen)
    rows = LogisticRegressionClassifier._create_X(trained, unseen)
    assert rows.dtype == rasa_rows.dtype and rows.shape == rasa_rows.shape
    assert (rows.tocsr() != rasa_rows.tocsr()).nnz == 0

    assert after == before  # every intent and confidence, bit for bit
    patched = LogisticRegressionClassifier.load({}, storage, resource, context)
    assert patched.clf.coef_.T.flags["C_CONTIGUOUS"]  # what spares the copy per message


class Recorder(GraphComponent):
    """A toy node: joins its inputs with its own name and records each call."""

    calls: List[str] = []

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def create(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> Recorder:
        return cls(config["name"])

    def join(self, **parts: Any) -> str:
        Recorder.calls.append(self.name)
        return self.name + "(" + ",".join(f"{key}={parts[key]}" for key in sorted(parts)) + ")"


def toy_schema() -> GraphSchema:
    def node(name: str, needs: Dict[str, str], target: bool = False) -> SchemaNode:
        return SchemaNode(needs=needs, uses=Recorder, constructor_name="create", fn="join",
                          config={"name": name}, is_target=target)

    return GraphSchema({
        "tokens": node("tokens", {"text": "__message__"}),
        "words": node("words", {"tokens": "tokens"}),
        "chars": node("chars", {"tokens": "tokens"}),
        "intent": node("intent", {"words": "words", "chars": "chars"}, target=True),
        "unused": node("unused", {"tokens": "tokens"}),
        "unfed": node("unfed", {"missing": "__never_given__"}),
    })


def run_toy(tmp_path: Path, inputs: Dict[str, Any], targets: List[str] | None) -> tuple[Dict[str, Any], List[str]]:
    Recorder.calls = []
    runner = DaskGraphRunner(toy_schema(), LocalModelStorage(tmp_path), ExecutionContext(toy_schema()))
    return runner.run(inputs, targets), sorted(Recorder.calls)


@pytest.mark.parametrize("targets", [None, ["intent"], ["words", "intent"], ["tokens"], ["__message__", "chars"]])
def test_graphs_give_the_same_outputs_without_dask(tmp_path: Path, targets: List[str] | None) -> None:
    rasa_run = DaskGraphRunner.run
    try:
        with_dask = run_toy(tmp_path, {"__message__": "hi"}, targets)
        run_graphs_without_dask()
        assert DaskGraphRunner.run is not rasa_run
        assert run_toy(tmp_path, {"__message__": "hi"}, targets) == with_dask  # outputs, and each node once
    finally:
        DaskGraphRunner.run = rasa_run  # type: ignore[method-assign]


def test_graph_errors_are_the_same_without_dask(tmp_path: Path) -> None:
    rasa_run = DaskGraphRunner.run
    try:
        with pytest.raises(GraphRunError):  # a missing input is reported by Rasa's node
            run_toy(tmp_path, {}, ["unfed"])
        with pytest.raises(GraphRunError):
            run_toy(tmp_path, {"__message__": "tokens"}, ["intent"])  # an input value named like a node
        run_graphs_without_dask()
        with pytest.raises(GraphRunError):
            run_toy(tmp_path, {}, ["unfed"])
        with pytest.raises(GraphRunError):
            run_toy(tmp_path, {"__message__": "tokens"}, ["intent"])
    finally:
        DaskGraphRunner.run = rasa_run  # type: ignore[method-assign]


ACTIONS = ["action_listen", "utter_greet", "intake_form", "utter_risk_acute", SHOULD_NOT_BE_SET]
INTENTS = ["greet", "ask", "risk_acute", "deny", SHOULD_NOT_BE_SET]


def random_state(rng: random.Random, starter_share: float) -> Dict[str, Any]:
    if rng.random() < starter_share:
        return {} if rng.random() < 0.5 else {"slots": {"risk_flagged": (1.0,)}}  # conversation start
    state: Dict[str, Any] = {"prev_action": {"action_name": rng.choice(ACTIONS)}}
    if rng.random() < 0.7:
        state["user"] = {"intent": rng.choice(INTENTS)}
    if rng.random() < 0.3:
        state["active_loop"] = {"name": rng.choice(["intake_form", SHOULD_NOT_BE_SET])}
    if rng.random() < 0.3:
        state["slots"] = {"risk_flagged": rng.choice([(1.0,), (0.0,), SHOULD_NOT_BE_SET])}
    if rng.random() < 0.1:
        state["prev_action"] = {"action_text": "some text"}
    return state


def test_indexed_rule_lookup_finds_the_same_rules_in_the_same_order(tmp_path: Path) -> None:
    rng = random.Random(11)
    policy = RulePolicy.create(RulePolicy.get_default_config(), LocalModelStorage(tmp_path), Resource("rules"),
                               ExecutionContext(GraphSchema({}), node_name="rules"))
    lookup = {json.dumps([random_state(rng, 0.1) for _ in range(rng.randint(1, 4))]): "utter_x" for _ in range(400)}
    conversations = [[random_state(rng, 0.05 if turn else 0.3) for turn in range(rng.randint(1, 8))]
                     for _ in range(600)]
    rasa_possible_keys = RulePolicy.__dict__["_get_possible_keys"]
    expected = [list(rasa_possible_keys(policy, lookup, states)) for states in conversations]
    try:
        index_rule_lookups()
        assert RulePolicy._get_possible_keys is not rasa_possible_keys
        found = [list(policy._get_possible_keys(lookup, states)) for states in conversations]
    finally:
        RulePolicy._get_possible_keys = rasa_possible_keys  # type: ignore[method-assign]
    assert found == expected  # the same rules, iterated in the same order (ties resolve the same way)
    assert sum(1 for keys in expected if keys) > 50  # the data really exercises matching rules


def action_results() -> List[Any]:
    """Replies an action server could send: valid ones of every event type and broken ones."""
    from rasa.shared.core.events import (
        ActionExecuted,
        ActiveLoop,
        BotUttered,
        FollowupAction,
        Restarted,
        SlotSet,
        UserUttered,
    )

    valid_events = [
        SlotSet("intake_state", "NY").as_dict(), SlotSet("requested_slot", None).as_dict(),
        ActiveLoop("intake_form").as_dict(), ActiveLoop(None).as_dict(), FollowupAction("utter_greet").as_dict(),
        BotUttered("hi", {"buttons": [{"title": "a", "payload": "/b"}]}).as_dict(), Restarted().as_dict(),
        ActionExecuted("action_listen").as_dict(), UserUttered("hi", {"name": "greet", "confidence": 1.0}).as_dict(),
        {"event": "slot", "name": "x", "value": [1, 2]}, {"event": "form_validation", "validate": False},
    ]
    broken_events = [
        {"event": "slot"}, {"event": "slot", "name": 3, "value": 1}, {"event": "no_such_event"}, {"name": "x"},
        {"event": 7}, "slot", None, {"event": "slot", "name": "x", "value": 1, "timestamp": "soon"},
        {"event": "user", "text": 5}, {"event": "active_loop", "name": 5}, {"event": "bot", "metadata": []},
    ]
    results: List[Any] = [{}, {"events": []}, {"responses": [{"text": "hi"}]}, {"responses": "hi"}, [], None,
                          {"events": "slot"}, {"events": [], "responses": [1]}]
    rng = random.Random(4)
    for _ in range(200):
        events = rng.sample(valid_events, rng.randint(1, 4))
        if rng.random() < 0.5:
            events.insert(rng.randint(0, len(events)), rng.choice(broken_events))
        results.append({"events": events, "responses": []})
    return results


def test_action_results_are_judged_as_by_the_full_schema() -> None:
    from jsonschema import validators
    from rasa.core.actions.action import RemoteAction

    from bot.ops.rasa_main import EventDispatchingCheck

    schema = RemoteAction.action_response_format_spec()
    full = validators.validator_for(schema)(schema)
    check = EventDispatchingCheck(schema)
    assert check.by_event, "the schema's shape changed: the check would always take the slow path"
    verdicts = [(check.is_valid(result), full.is_valid(result)) for result in action_results()]
    assert all(fast == slow for fast, slow in verdicts)
    assert {slow for _fast, slow in verdicts} == {True, False}  # both kinds were really tried


def tracker_contents(tracker: Any, original: Any = None) -> Dict[str, Any]:
    """Every attribute of a tracker, with events and slots compared by identity and attributes."""
    contents = dict(tracker.__dict__)
    events = contents.pop("events")
    contents["events"] = ([id(event) for event in events], events.maxlen)
    contents["slots"] = {name: (type(slot), slot.__dict__) for name, slot in contents.pop("slots").items()}
    for name in ("latest_message", "latest_bot_utterance"):
        latest = contents[name]
        if any(event is latest for event in events):
            contents[name] = id(latest)
        else:  # a placeholder of the tracker's own: equal, never shared
            contents[name] = (type(latest), {key: value for key, value in vars(latest).items() if key != "timestamp"})
            assert original is None or latest is not getattr(original, name), name
    return contents


def story_trackers() -> Iterator[Any]:
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActiveLoop, SlotSet
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader

    root = Path(__file__).resolve().parents[2]
    domain = Domain.load(str(root / "domain.yml"))
    for path in sorted([*root.glob("data/stories/*.yml"), *root.glob("tests/stories/*.yml")]):
        for step in YAMLStoryReader(domain).read_from_file(str(path)):
            tracker = DialogueStateTracker("copy-check", domain.slots, sender_source="web")
            tracker.model_id, tracker.assistant_id = "model", "assistant"
            for event in step.explicit_events(domain):
                tracker.update(event, domain)
            yield tracker
            tracker.update(ActiveLoop("intake_form"), domain)
            tracker.update(SlotSet("intake_state", "NY"), domain)
            yield tracker


def test_a_tracker_copy_equals_rasas_replayed_copy() -> None:
    from rasa.shared.core.events import ActionExecuted, SlotSet

    from bot.ops.rasa_main import copied_tracker

    trackers = 0
    for tracker in story_trackers():
        ours, rasa = copied_tracker(tracker), tracker.travel_back_in_time(float("inf"))
        assert tracker_contents(ours, tracker) == tracker_contents(rasa, tracker)
        before = tracker_contents(tracker)
        ours.update(SlotSet("intake_state", "CA"))  # a copy is independent of the original
        ours.update(ActionExecuted("utter_greet"))
        if ours.active_loop is not None:
            ours.active_loop.rejected = True
        assert tracker_contents(tracker) == before
        trackers += 1
    assert trackers > 50


def test_the_empty_domain_check_answers_as_rasas(monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.shared.core.domain import Domain

    from bot.ops.rasa_main import compare_with_the_empty_domain_once

    ours_domain = Domain.load(Path(__file__).resolve().parents[2] / "domain.yml")
    domains = [Domain.empty(), Domain.from_dict({}), ours_domain, Domain.from_yaml("version: '3.1'\nintents: [greet]")]
    rasas = [domain.is_empty() for domain in domains]
    monkeypatch.setattr(Domain, "is_empty", Domain.is_empty)  # undone after the test
    compare_with_the_empty_domain_once()
    assert [domain.is_empty() for domain in domains] == rasas == [True, True, False, False]


# Components of config.yml's pipeline that never read sequence features (tokens, count vectors, the
# logistic regression reads sentence features, the fallback reads the ranking, the safety component the
# text). DIET, CRF or a response selector would need them: count_sentence_features_only must go then.
NO_SEQUENCE_READERS = {
    "WhitespaceTokenizer", "CountVectorsFeaturizer", "LogisticRegressionClassifier", "FallbackClassifier",
    "bot.safety.component.SafetyClassifier",
}


def test_the_pipeline_reads_no_sequence_features() -> None:
    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "config.yml").read_text(encoding="utf-8"))
    assert {component["name"] for component in config["pipeline"]} <= NO_SEQUENCE_READERS


def test_count_vectors_give_rasas_sentence_features(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
    from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer

    from bot.ops.rasa_main import count_sentence_features_only

    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(GraphSchema({}), "test")
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    texts = ["hello there", "I would like to book an intake call", "do you take Aetna?", "hi hi hi", "???"]
    training = TrainingData([Message(data={TEXT: text, INTENT: "greet"}) for text in texts])
    tokenizer.process_training_data(training)
    featurizers = []
    for index, extra in enumerate(({}, {"analyzer": "char_wb", "min_ngram": 2, "max_ngram": 4})):
        config = {**CountVectorsFeaturizer.get_default_config(), **extra}
        featurizer = CountVectorsFeaturizer.create(config, storage, Resource(f"cv{index}"), context)
        featurizer.train(training)
        featurizers.append(featurizer)
    unseen = ["hello, can I book a call", "Aetna or Cigna", "zzz unknown words", "call"]

    def sentence_and_sequence(text: str) -> List[Any]:
        message = Message(data={TEXT: text})
        tokenizer.process([message])
        for featurizer in featurizers:
            featurizer.process([message])
        sequence, sentence = message.get_sparse_features(TEXT)
        return [sentence.features.toarray().tolist() if sentence else None, sequence is not None]

    rasas = [sentence_and_sequence(text) for text in unseen]
    monkeypatch.setattr(CountVectorsFeaturizer, "_create_features", CountVectorsFeaturizer._create_features)
    count_sentence_features_only()
    ours = [sentence_and_sequence(text) for text in unseen]
    assert [sentence for sentence, _ in ours] == [sentence for sentence, _ in rasas]
    assert all(has_sequence for _, has_sequence in rasas) and not any(has_sequence for _, has_sequence in ours)


def run_one_action(action: Any, tracker: Any, events: List[Any]) -> List[Any]:
    """MessageProcessor._run_action (as patched now) on a bare processor; the channel's messages."""
    import asyncio

    from rasa.core.channels.channel import CollectingOutputChannel
    from rasa.core.policies.policy import PolicyPrediction
    from rasa.core.processor import MessageProcessor

    from bot.nlg import PracticeNLG

    processor = MessageProcessor.__new__(MessageProcessor)
    processor.domain = tracker_domain()
    channel = CollectingOutputChannel()
    prediction = PolicyPrediction([], "RulePolicy", events=events)
    nlg = PracticeNLG(domain=processor.domain)
    asyncio.run(processor._run_action(action, tracker, channel, nlg, prediction))
    return channel.messages


def tracker_domain() -> Any:
    from rasa.shared.core.domain import Domain

    return Domain.load(str(Path(__file__).resolve().parents[2] / "domain.yml"))


def test_responses_and_listening_run_on_the_tracker_itself_with_rasas_results(monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.core.actions.action import ActionBotResponse, ActionListen
    from rasa.core.processor import MessageProcessor
    from rasa.shared.core.events import SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    import bot.ops.rasa_main as adjustments

    domain = tracker_domain()

    def conversation() -> Any:
        tracker = DialogueStateTracker("uncopied", domain.slots)
        tracker.update(UserUttered("hi", {"name": "greet", "confidence": 1.0}), domain)
        return tracker

    def events_of(tracker: Any) -> List[Dict[str, Any]]:
        return [{k: v for k, v in event.as_dict().items() if k != "timestamp"} for event in tracker.events]

    def outcome(action: Any, events: List[Any]) -> tuple[List[Any], List[Dict[str, Any]]]:
        tracker = conversation()
        messages = run_one_action(action, tracker, events)
        return messages, events_of(tracker)

    utter, listen, slot = ActionBotResponse("utter_greet"), ActionListen(), [SlotSet("intake_state", "NY")]
    rasas = {name: outcome(action, events) for name, (action, events) in
             {"utter": (utter, []), "listen": (listen, []), "utter+slot": (utter, slot)}.items()}
    assert rasas["utter"][0] and rasas["utter"][1][-1]["event"] == "bot"  # the response was uttered

    monkeypatch.setattr(MessageProcessor, "_run_action", MessageProcessor._run_action)  # restored afterwards
    monkeypatch.setattr(DialogueStateTracker, "copy", DialogueStateTracker.copy)
    copies: List[Any] = []
    real_copy = adjustments.copied_tracker
    monkeypatch.setattr(adjustments, "copied_tracker", lambda tracker: copies.append(tracker) or real_copy(tracker))
    adjustments.copy_trackers_without_replay()
    adjustments.run_read_only_actions_uncopied()

    assert outcome(utter, []) == rasas["utter"] and outcome(listen, []) == rasas["listen"]
    assert copies == [] and adjustments._UNCOPIED == [None]
    # With events of the prediction's own, Rasa's copy is made (a rejection must be able to drop them).
    assert outcome(utter, slot) == rasas["utter+slot"] and len(copies) == 1


def test_custom_action_requests_carry_the_same_json_with_the_domain_serialized_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from aiohttp import web
    from rasa.utils.endpoints import EndpointConfig

    import bot.ops.rasa_main as adjustments
    from tests.local_http import serving

    domain = tracker_domain().as_dict()
    bodies = [{"next_action": f"validate_intake_form_{n}", "sender_id": "s", "tracker": {"events": [n]},
               "domain": domain, "version": "3.6.21"} for n in range(3)]
    serialized: List[Any] = []
    real_dumps = adjustments.json.dumps
    monkeypatch.setattr(adjustments.json, "dumps", lambda value: serialized.append(value) or real_dumps(value))
    monkeypatch.setattr(EndpointConfig, "request", EndpointConfig.request)  # restored afterwards
    adjustments.send_the_domain_serialized_once()
    received: List[Any] = []

    async def exchange() -> List[Any]:
        async def webhook(request: web.Request) -> web.Response:
            received.append((request.content_type, await request.json()))
            return web.json_response({"events": [], "responses": []})

        async with serving("/webhook", webhook) as base_url:
            endpoint = EndpointConfig(f"{base_url}/webhook")
            return [await endpoint.request(json=body, method="post", timeout=5) for body in bodies]

    answers = asyncio.run(exchange())
    assert answers == [{"events": [], "responses": []}] * 3
    assert received == [("application/json", body) for body in bodies]  # the same JSON objects arrived
    assert sum(value is domain for value in serialized) == 1  # the domain was serialized once
