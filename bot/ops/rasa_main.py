"""`python -m bot.ops.rasa_main run …`: Rasa's own command line with production adjustments.

1. A bounded custom-action timeout. Rasa 3.6 waits up to 300 s for the action server
(rasa.core.constants.DEFAULT_REQUEST_TIMEOUT, read at call time by RemoteAction.run) and offers no
setting for it. A hung action server would then hold the conversation's lock for minutes, so a crisis
message sent right after a slow action would wait too. We lower that one module constant before Rasa
starts; a timed-out action is logged and answered with utter_action_failed (12. below).

2. SQLite tracker store (the local default) with synchronous=OFF. Rasa commits on the event loop; with
SQLite's default (several fsyncs per commit) that was 18% of the server's time under load (py-spy,
`make bench`). A killed Rasa process still loses nothing (the OS has the data); only a power cut or OS
crash could. It also writes ahead (WAL): with pooled connections (bot/ops/tracker_cache.py) a commit
then appends to one file instead of creating and deleting a rollback journal (~80 us per transaction
here). WAL was measured before the pool and not taken: Rasa opened a connection per query, and the
checkpoint on each close cost as much. PostgreSQL, the production tracker store, is not affected.

3. The action server's reply is validated with a schema compiled once. Rasa calls jsonschema.validate,
which re-checks the schema itself against the meta-schema on every custom action (10% of the server's
time under load). Same schema, same errors: an invalid reply still goes through Rasa's own check.
Each event is checked only against the schema alternative for its own `event` type instead of all 23
(another ~6 ms per custom action; EventDispatchingCheck).

4. A message that waits for its conversation's lock (another message of the same conversation is being
handled) checks again every 0.1 s instead of every second (LOCK_WAIT_SECONDS), so a crisis message sent
right behind another one is not delayed by up to a second.

5. Event types are looked up once. Deserialising a tracker resolves every stored event's type with
Event.resolve_by_type, which walks all Event subclasses each time (4-14% of the server's time under
load, more in longer conversations). The classes do not change after start-up, so the answer is cached.

6. Request bodies above MAX_REQUEST_BYTES (16 KiB) get 413 before they are parsed. Sanic reads
SANIC_REQUEST_MAX_SIZE when Rasa creates its app; it is set here, for the Rasa server only (the action
server, also Sanic, receives whole trackers and must keep its larger default).

7. The intent classifier's coefficients are stored column-major after loading. scikit-learn computes
X @ coef_.T; for a sparse X, scipy needs the right-hand side C-contiguous and otherwise copies the whole
(intents x features) matrix on every message (~0.4 MB here; 1-6 ms per message under load). In
column-major order coef_.T is C-contiguous, so nothing is copied; the products are the same numbers
(tests/ops/test_rasa_main.py compares the probabilities bit for bit).

8. Rasa's model graphs (NLU parse, action prediction) run node by node in dependency order instead of
through dask. Rasa runs them with dask's synchronous scheduler, which re-plans the graph (ordering,
bookkeeping of every task) twice per message for graphs of a dozen nodes, and formats all inputs
(tracker included) into a debug message that is then dropped: ~9% of the server's time under load.
Each node still runs exactly once per run, after the nodes it needs, with the same inputs
(tests/ops/test_rasa_main.py runs a graph both ways).

9. RulePolicy looks up the rules that can apply to the newest state through an index. Rasa checks every
rule (about 200 here) against the newest state of the conversation for each prediction, two or three
predictions per message: ~10% of the server's time. A rule whose last state needs a previous action or
an intent can only apply when the newest state has that very action or intent, so only rules indexed
under the newest state's action and intent (or needing neither) are checked, with Rasa's own check.
The result is the same set, built in the same order (so even ties between equally long rules resolve
as before). States without a previous action (conversation start) take Rasa's full path.

10. The intent classifier's input row is built with one sparse stack of the message's sentence features.
Rasa's version first combined every sequence feature too (thrown away) and stacked the sentence features
pair by pair, converting formats each time: ~5% of the server's time. The row has the same entries in
the same (sorted) order and the same dtype, so the classifier computes the same numbers.
11. No visitor text in the event broker's error log. When RabbitMQ is unreachable, Rasa's pika broker
logs every event it could not publish at ERROR level, "reduced" by dropping parse_data only: the
visitor's text (and the bot's reply) went into the log. Its log calls now keep only the event's type,
conversation id and timestamp (found by tests/e2e/test_prod_broker_down.py).

12. The policies' states of a conversation are extended event by event instead of replayed from the
first event for every policy and every predicted action (~19% of the server's time under load); any
rewind, restart or session start falls back to Rasa's own computation (bot/ops/state_cache.py). A
tracker's applied events (the events left after rewinds) are kept until its events change.

13. Copying a tracker copies its state instead of replaying every event into a fresh tracker. Rasa copies
the conversation's tracker before every action it runs (to drop the policy's events if the action is
rejected): ~5% of the server's time under load. A tracker's state is by construction the replay of its
events, so the copy takes that state directly: the same event objects in a new list, each slot copied as
copy.copy does, the loop's state copied, and the attributes Rasa's copy does not carry (sender_source,
model_id, assistant_id) left unset as in Rasa's copy. Anything other than a plain DialogueStateTracker
takes Rasa's path (tests/ops/test_rasa_main.py compares both copies attribute by attribute).

14. A custom action or form that fails or times out answers the visitor with utter_action_failed instead
of nothing, keeping the form's earlier answers (bot/ops/action_failures.py).

15. "Is the domain empty?" compares with the empty domain's dictionary built once. Rasa asks before
checking every parsed message for unknown intents and entities, and answered by building a whole new empty
Domain each time (~6% of an NLU parse). An empty domain is always the same dictionary.

16. The count-vector featurizers compute only the sentence features of a message. Rasa also counts each
token on its own (a second scikit-learn transform per featurizer and message) to build sequence features,
which only DIET, CRF and response selectors read; this pipeline's logistic regression reads sentence
features only, so they were computed and dropped. The sentence features are Rasa's own computation
(tests/ops/test_rasa_main.py checks them, and that config.yml has no component that reads sequence features).

17. One message's NLU parse skips library overhead around a few dozen numbers (bot/ops/nlu_speedups.py):
the count vectorizers count the text directly with sklearn's own analyzer and vocabulary, the intent
classifier's row is built as one CSR row, its probabilities are sklearn's arithmetic without the per-call
input checks, and only the kept intents of the ranking become dicts. Each result is bit for bit Rasa's
(tests/ops/test_nlu_speedups.py).

18. Deep copies made only as debug-log arguments are skipped while debug logging is off (the policies'
states, parse data, action events: ~2% of the server's time), and so is RulePolicy's text rendering of the
conversation's states that only goes into such a line (~1%). Only modules whose every use of `copy` is
such an argument are changed, checked in their source at start-up (bot/ops/log_copies.py).

19. Python's garbage collector is tuned for a server: after the model is loaded everything alive is frozen
out of the collector's way, and the young generation is larger (GC_THRESHOLDS; bot/ops/gc_tuning.py):
a message's tens of thousands of short-lived objects triggered dozens of collections (~7% of the CPU).

20. Rasa's response actions and action_listen run on the conversation's tracker instead of a copy of it
when the prediction brings no events of its own: they only read the tracker, and Rasa applies the events
they return to the original tracker either way (run_read_only_actions_uncopied).

21. The domain sent with each custom-action request is serialized once per model instead of for every
request (~65 KB of JSON per form answer); the request body is the same JSON (send_the_domain_serialized_once).

The REST channel's own fixes live in bot/ops/rest_channel.py.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
from typing import Any, Callable, Dict, FrozenSet, List, Set, Tuple

from bot.ops.action_failures import reply_when_actions_fail
from bot.ops.gc_tuning import tune_garbage_collection
from bot.ops.log_copies import skip_debug_log_copies, skip_debug_only_state_formatting
from bot.ops.nlu_speedups import (
    build_intent_rows_directly,
    count_one_text_directly,
    rank_intents_without_sklearn_checks,
)
from bot.ops.state_cache import incremental_policy_states, remembered_applied_events

ACTION_TIMEOUT_ENV = "ACTION_TIMEOUT_SECONDS"
DEFAULT_ACTION_TIMEOUT_SECONDS = 1.0
LOCK_WAIT_ENV = "LOCK_WAIT_SECONDS"
DEFAULT_LOCK_WAIT_SECONDS = 0.1
MAX_REQUEST_BYTES_ENV = "MAX_REQUEST_BYTES"
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024


def seconds_from_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        value = float(raw) if raw else default
    except ValueError as error:
        raise SystemExit(f"{name}={raw!r} is not a number of seconds") from error
    if value <= 0:
        raise SystemExit(f"{name} must be positive")
    return value


def apply_action_timeout(seconds: float) -> None:
    import rasa.core.actions.action as remote_actions

    remote_actions.DEFAULT_REQUEST_TIMEOUT = seconds


def tune_sqlite_connections() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def set_sqlite_pragmas(connection: Any, _record: Any) -> None:
        if isinstance(connection, sqlite3.Connection):
            cursor = connection.cursor()
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()


class EventDispatchingCheck:
    """True exactly when the action result schema accepts a result, with each event checked once.

    The schema's events are `{"required": ["event"], "oneOf": [23 alternatives]}`, each alternative
    fixing `event` to one constant. jsonschema tries every alternative on every event (~6 ms per custom
    action here); an alternative whose constant differs from the event's own `event` string cannot
    accept it, so only those with that constant (or none) are tried: oneOf still means exactly one of
    them. Anything unusual (events not a list of objects with a string `event`) takes the full check.
    """

    def __init__(self, schema: Dict[str, Any]) -> None:
        from jsonschema import validators

        self.full = validators.validator_for(schema)(schema)
        items = ((schema.get("properties") or {}).get("events") or {}).get("items") or {}
        alternatives = items.get("oneOf") if isinstance(items, dict) else None
        self.by_event: Dict[str, List[Any]] | None = None
        if not isinstance(alternatives, list) or set(items) - {"type", "properties", "required", "oneOf"}:
            return
        outer = {key: value for key, value in schema.items() if key != "properties"}
        outer["properties"] = dict(schema["properties"])
        outer["properties"]["events"] = {"type": "array"}
        self.outer = validators.validator_for(outer)(outer)
        base = {key: value for key, value in items.items() if key != "oneOf"}
        self.base = validators.validator_for(base)(base)
        self.unconstrained: List[Any] = []
        self.by_event = {}
        for alternative in alternatives:
            compiled = validators.validator_for(alternative)(alternative)
            const = ((alternative.get("properties") or {}).get("event") or {}).get("const")
            if isinstance(const, str):
                self.by_event.setdefault(const, []).append(compiled)
            else:
                self.unconstrained.append(compiled)

    def is_valid(self, result: Any) -> bool:
        events = result.get("events") if isinstance(result, dict) else None
        if self.by_event is None or not isinstance(events, list) or not self.outer.is_valid(result):
            return bool(self.full.is_valid(result))
        for event in events:
            kind = event.get("event") if isinstance(event, dict) else None
            if not isinstance(kind, str):
                return bool(self.full.is_valid(result))
            if not self.base.is_valid(event):
                return False
            candidates = [*self.by_event.get(kind, ()), *self.unconstrained]
            if sum(1 for candidate in candidates if candidate.is_valid(event)) != 1:
                return False
        return True


def compile_action_result_schema() -> None:
    from rasa.core.actions.action import RemoteAction

    check = EventDispatchingCheck(RemoteAction.action_response_format_spec())
    rasa_check = RemoteAction._validate_action_result

    def validate_action_result(self: RemoteAction, result: Dict[str, Any]) -> bool:
        if check.is_valid(result):
            return True
        return rasa_check(self, result)  # raises Rasa's own ValidationError with its explanation

    RemoteAction._validate_action_result = validate_action_result


def shorten_lock_wait(seconds: float) -> None:
    from rasa.core import lock_store

    rasa_lock = lock_store.LockStore.lock

    def lock(
        self: lock_store.LockStore,
        conversation_id: str,
        lock_lifetime: float = lock_store.LOCK_LIFETIME,
        wait_time_in_seconds: float = seconds,
    ) -> Any:
        return rasa_lock(self, conversation_id, lock_lifetime, wait_time_in_seconds)

    lock_store.LockStore.lock = lock


def cache_event_type_lookup() -> None:
    from rasa.shared.core.events import Event

    lookup = functools.lru_cache(maxsize=256)(Event.resolve_by_type)
    Event.resolve_by_type = staticmethod(lookup)


def compare_with_the_empty_domain_once() -> None:
    from rasa.shared.core.domain import Domain

    empty: List[Dict[str, Any]] = []  # filled on first use: Domain.empty() needs Rasa fully imported

    def is_empty(self: Domain) -> bool:
        if not empty:
            empty.append(Domain.empty().as_dict())
        return bool(self.as_dict() == empty[0])

    Domain.is_empty = is_empty


def count_sentence_features_only() -> None:
    from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer

    rasa_create = CountVectorsFeaturizer._create_features

    def create_features(
        self: CountVectorsFeaturizer, attribute: str, all_tokens: List[List[str]]
    ) -> Tuple[List[Any], List[Any]]:
        one_message = len(all_tokens) == 1 and bool(all_tokens[0])
        if not self.vectorizers.get(attribute) or not one_message or attribute not in DENSE_FEATURIZABLE_ATTRIBUTES:
            return rasa_create(self, attribute, all_tokens)
        sentence = self.vectorizers[attribute].transform([" ".join(all_tokens[0])])  # as Rasa computes it
        sentence.sort_indices()
        return [None], [sentence.tocoo()]

    create_features.sentence_only = True  # type: ignore[attr-defined]
    CountVectorsFeaturizer._create_features = create_features


def keep_intent_coefficients_column_major() -> None:
    import numpy as np
    from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier

    rasa_load = LogisticRegressionClassifier.load.__func__

    def load(cls: type, *args: Any, **kwargs: Any) -> LogisticRegressionClassifier:
        component = rasa_load(cls, *args, **kwargs)
        coefficients = getattr(component.clf, "coef_", None)
        if coefficients is not None:  # None: not trained (Rasa then created a fresh one)
            component.clf.coef_ = np.asfortranarray(coefficients)
        return component

    LogisticRegressionClassifier.load = classmethod(load)


def build_intent_rows_in_one_stack() -> None:
    import numpy as np
    import scipy.sparse
    from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
    from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
    from rasa.shared.nlu.training_data.message import Message

    def create_x(self: LogisticRegressionClassifier, messages: List[Message]) -> Any:
        rows = []
        for message in messages:
            parts = [
                feature.features
                for feature in message.features
                if feature.attribute == TEXT and feature.is_sparse() and feature.type == FEATURE_TYPE_SENTENCE
            ]
            dense = message.get_dense_features(attribute=TEXT)[1]
            if dense is not None:
                parts.append(scipy.sparse.csr_matrix(dense.features))
            # Rasa stacks with an empty float64 matrix when a kind is missing: the same dtype either way.
            dtype = np.result_type(np.float64, *(part.dtype for part in parts))
            row = scipy.sparse.hstack(parts, format="csr", dtype=dtype) if parts else scipy.sparse.csr_matrix([])
            row.sort_indices()
            rows.append(row)
        return scipy.sparse.vstack(rows)

    LogisticRegressionClassifier._create_X = create_x


def run_graphs_without_dask() -> None:
    from rasa.engine.exceptions import GraphRunError
    from rasa.engine.runner.dask import DaskGraphRunner

    def needed_nodes(runner: DaskGraphRunner, targets: Tuple[str, ...]) -> FrozenSet[str]:
        known: Dict[Tuple[str, ...], FrozenSet[str]] = runner.__dict__.setdefault("_needed_nodes", {})
        if targets not in known:
            known[targets] = frozenset(runner._graph_schema.minimal_graph_schema(list(targets)).nodes)
        return known[targets]

    def run(
        self: DaskGraphRunner, inputs: Dict[str, Any] | None = None, targets: List[str] | None = None
    ) -> Dict[str, Any]:
        run_targets = targets if targets else self._graph_schema.target_names
        needed = needed_nodes(self, tuple(run_targets))
        outputs: Dict[str, Any] = {}
        for name, value in (inputs or {}).items():
            if isinstance(value, str) and value in needed:  # the same check as Rasa's
                raise GraphRunError(f"Input value '{value}' clashes with a node name.")
            outputs[name] = (name, value)  # an input replaces a node of that name, as in Rasa

        def output_of(name: str) -> Any:
            if name not in outputs:
                if name not in needed:
                    return name  # not provided: the node is told its name, as dask does
                schema_node = self._graph_schema.nodes[name]
                outputs[name] = self._instantiated_nodes[name](*(output_of(n) for n in schema_node.needs.values()))
            return outputs[name]

        try:
            return dict(output_of(target) for target in run_targets)
        except RuntimeError as error:
            raise GraphRunError("Error running runner.") from error

    DaskGraphRunner.run = run


RuleIndex = Tuple[List[str], Dict[Tuple[Any, Any], List[str]]]


def _rule_requirement(last_rule_state: Dict[str, Any], part: str, key: str) -> Any:
    """The value the newest conversation state must have for this rule (None: no such need)."""
    from rasa.shared.core.constants import SHOULD_NOT_BE_SET

    value = (last_rule_state.get(part) or {}).get(key)
    if not value or value == SHOULD_NOT_BE_SET or not isinstance(value, str):
        return None
    return value


def index_rules(lookup: Dict[str, Any], rule_states: Callable[[str], List[Dict[str, Any]]]) -> RuleIndex:
    """The keys in the order Rasa would walk them, and the keys grouped by what their last state needs."""
    from rasa.shared.core.constants import PREVIOUS_ACTION, USER
    from rasa.shared.nlu.constants import ACTION_NAME, INTENT

    ordered = list(set(lookup.keys()))  # the same order as a fresh set of the same keys
    groups: Dict[Tuple[Any, Any], List[str]] = {}
    for key in ordered:
        states = rule_states(key)
        last = states[-1] if states else {}
        need = (_rule_requirement(last, PREVIOUS_ACTION, ACTION_NAME), _rule_requirement(last, USER, INTENT))
        groups.setdefault(need, []).append(key)
    return ordered, groups


def index_rule_lookups() -> None:
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.shared.core.constants import PREVIOUS_ACTION, USER
    from rasa.shared.nlu.constants import ACTION_NAME, INTENT

    rasa_possible_keys = RulePolicy._get_possible_keys

    def possible_keys(self: RulePolicy, lookup: Dict[str, Any], states: List[Dict[str, Any]]) -> Set[str]:
        newest = states[-1] if states else {}
        action = (newest.get(PREVIOUS_ACTION) or {}).get(ACTION_NAME)
        if not newest.get(PREVIOUS_ACTION) or not isinstance(action, str):
            return rasa_possible_keys(self, lookup, states)
        indexes: Dict[int, Tuple[Dict[str, Any], RuleIndex]] = self.__dict__.setdefault("_rule_indexes", {})
        if id(lookup) not in indexes:  # the lookups never change once the policy is loaded
            indexes[id(lookup)] = (lookup, index_rules(lookup, self._rule_key_to_state))
        ordered, groups = indexes[id(lookup)][1]
        intent = (newest.get(USER) or {}).get(INTENT)
        applicable = {
            key
            for need in {(action, intent), (action, None), (None, intent), (None, None)}
            for key in groups.get(need, ())
            if self._is_rule_applicable(key, 0, newest)
        }
        found = set(filter(lambda key: key in applicable, ordered))
        for turn, state in enumerate(reversed(states)):
            if turn:  # the newest state (turn 0) is done; older ones exactly as Rasa does
                found = set(filter(lambda key: self._is_rule_applicable(key, turn, state), found))
        return found

    RulePolicy._get_possible_keys = possible_keys
def copied_tracker(tracker: Any) -> Any:
    """What `tracker.copy()` (a replay of every event into a fresh tracker) ends with, without the replay."""
    import collections
    import dataclasses

    from rasa.shared.core.events import BotUttered, UserUttered
    from rasa.shared.core.trackers import DEFAULT_SENDER_ID, DialogueStateTracker

    copy = DialogueStateTracker.__new__(DialogueStateTracker)
    copy.__dict__.update(tracker.__dict__)
    copy.events = collections.deque(tracker.events, tracker._max_event_history)
    copy.sender_id = tracker.sender_id or DEFAULT_SENDER_ID
    copy.sender_source = None  # not passed on by Rasa's init_copy either
    copy.model_id = None
    copy.assistant_id = None
    slots = {}
    for slot in tracker.slots.values():
        copied = object.__new__(type(slot))  # what copy.copy does for a slot: a new object, same attributes
        copied.__dict__.update(slot.__dict__)
        slots[slot.name] = copied
    copy.slots = slots
    copy.latest_action = dict(tracker.latest_action) if tracker.latest_action is not None else None
    copy.active_loop = dataclasses.replace(tracker.active_loop) if tracker.active_loop is not None else None
    # The latest message and bot utterance are events of the conversation (shared, as in a replay) or,
    # when there is none since the last reset, an empty placeholder each tracker makes for itself.
    if not any(event is tracker.latest_message for event in reversed(tracker.events)):
        copy.latest_message = UserUttered.empty()
    if not any(event is tracker.latest_bot_utterance for event in reversed(tracker.events)):
        copy.latest_bot_utterance = BotUttered.empty()
    return copy


# The tracker whose next copy() is the tracker itself (run_read_only_actions_uncopied); None almost always.
_UNCOPIED: List[Any] = [None]


def copy_trackers_without_replay() -> None:
    from rasa.shared.core.trackers import DialogueStateTracker

    rasa_copy = DialogueStateTracker.copy
    if getattr(rasa_copy, "without_replay", False):
        return

    def copy(self: DialogueStateTracker) -> DialogueStateTracker:
        if _UNCOPIED[0] is self:
            _UNCOPIED[0] = None
            return self
        if type(self) is not DialogueStateTracker or type(self.slots) is not dict:
            return rasa_copy(self)
        return copied_tracker(self)

    copy.without_replay = True  # type: ignore[attr-defined]
    DialogueStateTracker.copy = copy


def run_read_only_actions_uncopied() -> None:
    """Responses and action_listen run on the conversation's tracker itself, not on a copy of it.

    Rasa's `_run_action` copies the tracker first, applies the prediction's events to the copy and runs
    the action on it, so that a rejected action leaves the tracker as it was. Rasa's own response actions
    and action_listen only read the tracker they are given (they return events, which Rasa then applies to
    the original), so when the prediction carries no events the copy is the same tracker state for
    nothing. The copy is skipped for exactly those action classes, by having that one `copy()` call, the
    first of `_run_action`, hand back the tracker itself.
    """
    from rasa.core.actions.action import ActionBotResponse, ActionEndToEndResponse, ActionListen, ActionRetrieveResponse
    from rasa.core.processor import MessageProcessor

    rasa_run_action = MessageProcessor._run_action
    if getattr(rasa_run_action, "read_only_uncopied", False):
        return
    read_only = (ActionBotResponse, ActionRetrieveResponse, ActionEndToEndResponse, ActionListen)

    async def run_action(self: MessageProcessor, action: Any, tracker: Any, output_channel: Any, nlg: Any,
                         prediction: Any) -> bool:
        if type(action) in read_only and not prediction.events:
            _UNCOPIED[0] = tracker  # consumed by _run_action's copy(), before anything else can run
        try:
            return bool(await rasa_run_action(self, action, tracker, output_channel, nlg, prediction))
        finally:
            _UNCOPIED[0] = None

    run_action.read_only_uncopied = True  # type: ignore[attr-defined]
    MessageProcessor._run_action = run_action


def body_with_domain_serialized_once(body: Dict[str, Any], cache: List[Any]) -> bytes:
    """`json.dumps(body)` as UTF-8 (what aiohttp sends for `json=body`), with `body["domain"]` serialized
    only when it is another dictionary than last time (cache: [that dictionary, its JSON])."""
    domain = body["domain"]
    if cache[0] is not domain:
        cache[0], cache[1] = domain, json.dumps(domain)
    rest = json.dumps({key: value for key, value in body.items() if key != "domain"})
    return (rest[:-1] + (", " if len(rest) > 2 else "") + '"domain": ' + cache[1] + "}").encode("utf-8")


def send_the_domain_serialized_once() -> None:
    """The domain in each custom-action request is serialized once, not for every request.

    Rasa sends the whole domain (~65 KB of JSON here) with every call of a custom action (each answer in
    a form is validated by one) and aiohttp serializes it anew each time: ~2% of the server's CPU. Rasa's
    `Domain.as_dict()` is the same dictionary for the life of a model and is never changed, so its JSON
    is kept with it (a new model's domain is another dictionary, and is serialized again). The request
    body is the same JSON object, with "domain" as its last key.
    """
    from rasa.utils.endpoints import EndpointConfig

    rasa_request = EndpointConfig.request
    if getattr(rasa_request, "domain_serialized_once", False):
        return
    cache: List[Any] = [None, ""]

    async def request(self: EndpointConfig, method: str = "post", subpath: str | None = None,
                      content_type: str | None = "application/json", compress: bool = False,
                      **kwargs: Any) -> Any:
        body = kwargs.get("json")
        if (isinstance(body, dict) and type(body.get("domain")) is dict and content_type == "application/json"
                and "data" not in kwargs):
            kwargs = {key: value for key, value in kwargs.items() if key != "json"}
            kwargs["data"] = body_with_domain_serialized_once(body, cache)
        return await rasa_request(self, method, subpath, content_type, compress, **kwargs)

    request.domain_serialized_once = True  # type: ignore[attr-defined]
    EndpointConfig.request = request


BROKER_LOG_FIELDS = ("sender_id", "event", "timestamp")


class _EventTextRedactingLogger:
    """Passes every call on to Rasa's logger with `rasa_event` cut down to BROKER_LOG_FIELDS."""

    def __init__(self, wrapped: Any) -> None:
        self._wrapped = wrapped

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._wrapped, name)

        def call(*args: Any, **fields: Any) -> Any:
            event = fields.get("rasa_event")
            if isinstance(event, dict):
                fields["rasa_event"] = {key: event.get(key) for key in BROKER_LOG_FIELDS}
            return method(*args, **fields)

        return call


def keep_visitor_text_out_of_broker_logs() -> None:
    import rasa.core.brokers.pika as pika_broker

    if not isinstance(pika_broker.structlogger, _EventTextRedactingLogger):
        pika_broker.structlogger = _EventTextRedactingLogger(pika_broker.structlogger)


def limit_request_size() -> None:
    raw = os.environ.get(MAX_REQUEST_BYTES_ENV) or str(DEFAULT_MAX_REQUEST_BYTES)
    if not raw.isdigit() or int(raw) < 1024:
        raise SystemExit(f"{MAX_REQUEST_BYTES_ENV}={raw!r} must be a whole number of bytes, at least 1024")
    os.environ["SANIC_REQUEST_MAX_SIZE"] = raw


def speed_ups() -> None:
    """The adjustments that change only how fast Rasa answers (tests/e2e/test_rasa_speedups.py)."""
    tune_sqlite_connections()
    compile_action_result_schema()
    cache_event_type_lookup()
    compare_with_the_empty_domain_once()
    count_sentence_features_only()
    count_one_text_directly()  # needs count_sentence_features_only before it
    keep_intent_coefficients_column_major()
    build_intent_rows_in_one_stack()
    build_intent_rows_directly()  # falls back to build_intent_rows_in_one_stack's rows
    rank_intents_without_sklearn_checks()
    run_graphs_without_dask()
    index_rule_lookups()
    incremental_policy_states()
    remembered_applied_events()
    copy_trackers_without_replay()
    run_read_only_actions_uncopied()  # needs copy_trackers_without_replay's copy()
    send_the_domain_serialized_once()
    skip_debug_log_copies()
    skip_debug_only_state_formatting()
    tune_garbage_collection()


def main() -> None:
    limit_request_size()
    apply_action_timeout(seconds_from_env(ACTION_TIMEOUT_ENV, DEFAULT_ACTION_TIMEOUT_SECONDS))
    shorten_lock_wait(seconds_from_env(LOCK_WAIT_ENV, DEFAULT_LOCK_WAIT_SECONDS))
    speed_ups()
    keep_visitor_text_out_of_broker_logs()
    reply_when_actions_fail()
    from rasa.__main__ import main as rasa_cli

    rasa_cli()


if __name__ == "__main__":
    main()
