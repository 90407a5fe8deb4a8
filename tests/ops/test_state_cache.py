"""The policies' states, extended event by event (bot/ops/state_cache.py), are exactly Rasa's."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Iterator, List

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActionReverted,
    ActiveLoop,
    Event,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader

from bot.ops.state_cache import IncrementalStates, carry_progress, remembered_applied_events

ROOT = Path(__file__).resolve().parents[2]
STORY_FILES = sorted(
    [*ROOT.glob("data/stories/*.yml"), *ROOT.glob("data/rules/*.yml"), *ROOT.glob("tests/stories/*.yml")]
)
FLAGS = list(itertools.product((False, True), repeat=2))  # (omit_unset_slots, ignore_rule_only_turns)


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "domain.yml"))


@pytest.fixture()
def incremental() -> IncrementalStates:
    # Not installed on Domain: Rasa's function stays the reference for the comparison.
    return IncrementalStates(Domain.states_for_tracker_history)


def rule_only_data(domain: Domain) -> dict:
    return {"rule_only_slots": [slot.name for slot in domain.slots][:3], "rule_only_loops": list(domain.form_names)[:1]}


def assert_same_after_each_event(domain: Domain, incremental: IncrementalStates, events: List[Event]) -> None:
    """Feeds the events one by one; after each, every flag combination gives Rasa's states."""
    tracker = DialogueStateTracker("check", domain.slots)
    for index, event in enumerate(events):
        tracker.update(event, domain)
        for omit_unset_slots, ignore_rule_only_turns in FLAGS:
            data = rule_only_data(domain) if ignore_rule_only_turns else None
            ours = incremental(domain, tracker, omit_unset_slots, ignore_rule_only_turns, data)
            rasa = Domain.states_for_tracker_history(domain, tracker, omit_unset_slots, ignore_rule_only_turns, data)
            assert ours == rasa, (index, event, omit_unset_slots, ignore_rule_only_turns)
            for state in ours:  # callers may change what they get (Rasa's featurizers delete keys)
                for sub_state in state.values():
                    sub_state.clear()


def story_events(domain: Domain) -> Iterator[List[Event]]:
    for path in STORY_FILES:
        for step in YAMLStoryReader(domain).read_from_file(str(path)):
            yield step.explicit_events(domain)


def test_every_story_and_rule_gives_rasas_states_after_every_event(
    domain: Domain, incremental: IncrementalStates
) -> None:
    stories = list(story_events(domain))
    assert len(stories) > 100  # data/ and tests/stories were really read
    for events in stories:
        assert_same_after_each_event(domain, incremental, events)
    assert incremental.extended > 3 * incremental.full  # mostly extended, not recomputed


def user(intent: str) -> UserUttered:
    return UserUttered(intent, {"name": intent, "confidence": 1.0})


def turn(intent: str, *actions: str) -> List[Event]:
    return [ActionExecuted("action_listen"), user(intent), *(ActionExecuted(action) for action in actions)]


REWIND_HISTORIES = {
    "user utterance reverted": [*turn("greet", "utter_greet"), *turn("affirm"), UserUtteranceReverted(),
                                *turn("goodbye", "utter_goodbye")],
    "action reverted": [*turn("greet", "utter_greet"), ActionReverted(), ActionExecuted("utter_goodbye")],
    "restart": [*turn("greet", "utter_greet"), Restarted(), *turn("greet", "utter_greet")],
    "session start": [*turn("greet", "utter_greet"), ActionExecuted("action_session_start"), SessionStarted(),
                      *turn("greet", "utter_greet")],
    "form loop, happy and unhappy": [
        *turn("request_intake_call", "intake_form"), ActiveLoop("intake_form"),
        SlotSet("requested_slot", "intake_care_for"),
        *turn("inform", "intake_form"), SlotSet("requested_slot", "intake_age"), *turn("ask_why_needed"),
        ActionExecutionRejected("intake_form"), ActionExecuted("utter_intake_why_age"), ActionExecuted("intake_form"),
        *turn("inform", "intake_form"), ActiveLoop(None), SlotSet("requested_slot", None),
        ActionExecuted("utter_goodbye"),
    ],
    "a second loop appears later": [*turn("request_intake_call", "intake_form"), ActiveLoop("intake_form"),
                                    *turn("inform", "intake_form"), ActiveLoop(None),
                                    *turn("cancel_intake_call", "intake_cancel_form"),
                                    ActiveLoop("intake_cancel_form"), *turn("inform", "intake_cancel_form")],
}


@pytest.mark.parametrize("name", REWIND_HISTORIES)
def test_rewinds_restarts_and_loops_give_rasas_states(
    domain: Domain, incremental: IncrementalStates, name: str
) -> None:
    assert_same_after_each_event(domain, incremental, REWIND_HISTORIES[name])


def test_a_rewind_is_recomputed_not_extended(domain: Domain, incremental: IncrementalStates) -> None:
    tracker = DialogueStateTracker("check", domain.slots)
    for event in turn("greet", "utter_greet"):
        tracker.update(event, domain)
    incremental(domain, tracker)
    tracker.update(ActionExecuted("utter_goodbye"), domain)
    incremental(domain, tracker)
    assert (incremental.full, incremental.extended) == (1, 1)
    tracker.update(Restarted(), domain)
    assert incremental(domain, tracker) == Domain.states_for_tracker_history(domain, tracker)
    assert (incremental.full, incremental.extended) == (2, 1)


def test_a_capped_history_takes_rasas_path(domain: Domain, incremental: IncrementalStates) -> None:
    tracker = DialogueStateTracker("check", domain.slots, max_event_history=3)
    for event in turn("greet", "utter_greet", "utter_goodbye"):
        tracker.update(event, domain)
    assert incremental(domain, tracker) == Domain.states_for_tracker_history(domain, tracker)
    assert (incremental.full, incremental.extended) == (0, 0)


@pytest.fixture()
def remembered() -> Iterator[None]:
    rasa_applied = DialogueStateTracker.applied_events
    remembered_applied_events()
    yield
    DialogueStateTracker.applied_events = rasa_applied  # type: ignore[method-assign]


@pytest.mark.parametrize("name", REWIND_HISTORIES)
def test_remembered_applied_events_are_rasas_after_every_event(domain: Domain, remembered: None, name: str) -> None:
    rasa_applied = DialogueStateTracker.applied_events.__wrapped__  # type: ignore[attr-defined]
    tracker = DialogueStateTracker("check", domain.slots)
    for event in REWIND_HISTORIES[name]:
        tracker.update(event, domain)
        first, second = tracker.applied_events(), tracker.applied_events()
        assert first == second == rasa_applied(tracker)
        assert all(a is b for a, b in zip(first, rasa_applied(tracker), strict=True))
        first.clear()  # each caller gets its own list
        assert tracker.applied_events() == second


def test_applied_events_are_computed_once_while_the_events_are_unchanged(domain: Domain, remembered: None) -> None:
    tracker = DialogueStateTracker("check", domain.slots)
    walks = [0]

    class CountingDeque(type(tracker.events)):  # type: ignore[misc]
        def __iter__(self) -> Iterator[Event]:
            walks[0] += 1
            return super().__iter__()

    tracker.events = CountingDeque(tracker.events)
    for event in turn("greet", "utter_greet"):
        tracker.update(event, domain)
    tracker.applied_events()
    walked = walks[0]
    tracker.applied_events()
    assert walks[0] == walked  # the second call did not walk the events
    tracker.update(ActionExecuted("utter_goodbye"), domain)
    assert tracker.applied_events()[-1].action_name == "utter_goodbye"  # a new event: walked again
    assert walks[0] > walked


def turns_of(events: List[Event]) -> List[List[Event]]:
    """The events cut before each action_listen: what one message adds to a conversation."""
    turns: List[List[Event]] = [[]]
    for event in events:
        if isinstance(event, ActionExecuted) and event.action_name == "action_listen" and turns[-1]:
            turns.append([])
        turns[-1].append(event)
    return turns


def stored_and_read_back(tracker: DialogueStateTracker, domain: Domain) -> DialogueStateTracker:
    """The tracker as a store's snapshot holds it: every event parsed back from its JSON (new objects)."""
    rows = [json.loads(json.dumps(event.as_dict())) for event in tracker.events]
    return DialogueStateTracker.from_dict(tracker.sender_id, rows, domain.slots)


def assert_carried_progress_gives_rasas_states(domain: Domain, incremental: IncrementalStates,
                                               events: List[Event]) -> None:
    """Message by message, as the server runs: each message's tracker is a copy of the stored snapshot."""
    snapshot = None
    for turn_events in turns_of(events):
        tracker = snapshot.copy() if snapshot is not None else DialogueStateTracker("carried", domain.slots)
        for event in turn_events:
            tracker.update(event, domain)
            for omit_unset_slots, ignore_rule_only_turns in FLAGS:
                data = rule_only_data(domain) if ignore_rule_only_turns else None
                ours = incremental(domain, tracker, omit_unset_slots, ignore_rule_only_turns, data)
                rasa = Domain.states_for_tracker_history(domain, tracker, omit_unset_slots, ignore_rule_only_turns,
                                                         data)
                assert ours == rasa, (event, omit_unset_slots, ignore_rule_only_turns)
        snapshot = stored_and_read_back(tracker, domain)
        carry_progress(tracker, snapshot)


def test_progress_carried_from_message_to_message_gives_rasas_states(
    domain: Domain, incremental: IncrementalStates
) -> None:
    histories = [*story_events(domain), *REWIND_HISTORIES.values()]
    for events in histories:
        assert_carried_progress_gives_rasas_states(domain, incremental, events)
    # Every message after a history's first began from the progress carried from the message before
    # (for each flag combination), instead of from the first event.
    later_messages = sum(len(turns_of(events)) - 1 for events in histories)
    assert later_messages > 300 and incremental.inherited == len(FLAGS) * later_messages


def test_carried_progress_is_not_taken_by_a_tracker_with_other_events(
    domain: Domain, incremental: IncrementalStates
) -> None:
    tracker = DialogueStateTracker("other", domain.slots)
    for event in turn("greet", "utter_greet"):
        tracker.update(event, domain)
    incremental(domain, tracker)
    snapshot = stored_and_read_back(tracker, domain)
    carry_progress(tracker, snapshot)
    rebuilt = stored_and_read_back(snapshot, domain)  # equal events, but not the snapshot's objects
    full_before = incremental.full
    assert incremental(domain, rebuilt) == Domain.states_for_tracker_history(domain, rebuilt)
    assert incremental.full == full_before + 1 and incremental.inherited == 0


def test_carried_progress_changes_hands_and_every_later_asker_still_gets_rasas_states(
    domain: Domain, incremental: IncrementalStates
) -> None:
    tracker = DialogueStateTracker("hands", domain.slots)
    for event in [*turn("greet", "utter_greet"), *turn("bot_challenge", "utter_bot_challenge")]:
        tracker.update(event, domain)
    incremental(domain, tracker)
    snapshot = stored_and_read_back(tracker, domain)
    carry_progress(tracker, snapshot)  # handed over: the saved tracker no longer holds it ...
    full = incremental.full
    assert incremental(domain, tracker) == Domain.states_for_tracker_history(domain, tracker)
    assert incremental.full == full + 1  # ... so asking again starts from its first event
    first, second = snapshot.copy(), snapshot.copy()
    for copy in (first, second):
        copy.update(ActionExecuted("action_listen"), domain)
    assert incremental(domain, first) == Domain.states_for_tracker_history(domain, first)
    assert incremental.inherited == 1
    # The first copy took the progress over; the second (a retrieve not followed by a save) computes its own.
    assert incremental(domain, second) == Domain.states_for_tracker_history(domain, second)
    assert incremental.inherited == 1 and incremental.full == full + 2
    assert incremental(domain, first) == Domain.states_for_tracker_history(domain, first)  # still its own
