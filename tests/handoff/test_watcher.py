from __future__ import annotations

from datetime import datetime

import pytest
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered

from bot.db import session_scope
from bot.handoff.clock import ManualClock
from bot.handoff.config import HandoffSettings
from bot.handoff.models import AuditEntry, Ticket
from bot.handoff.watcher import TrackerStorePoller, Watcher
from tests.handoff.conftest import CLOSED_UTC, FakeRasa, TrackerFile


def open_tickets(settings: HandoffSettings) -> list:
    with session_scope(settings.database_url) as session:
        return [
            (t.conversation_id, t.reason, t.risk_level, t.priority, t.status)
            for t in session.query(Ticket).order_by(Ticket.id)
        ]


def watcher(
    settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile
) -> TrackerStorePoller:
    trackers.add("warmup", BotUttered(text="hello"))  # the table exists before the watcher starts
    made = TrackerStorePoller(Watcher(settings, clock, rasa))
    made.poll_once()
    return made


def test_asking_for_a_person_opens_a_ticket_pauses_and_says_someone_is_alerted(
    settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile
) -> None:
    watch = watcher(settings, clock, rasa, trackers)
    trackers.visitor("v1", "can I talk to a person", "request_human")
    watch.poll_once()
    assert open_tickets(settings) == [("v1", "asked_for_person", None, 3, "new")]
    assert rasa.calls == [("pause", "v1"), ("utter", "v1", "utter_handoff_open")]
    assert trackers.is_paused("v1")


def test_outside_office_hours_the_visitor_hears_when_we_open(
    settings: HandoffSettings, rasa: FakeRasa, trackers: TrackerFile
) -> None:
    watch = watcher(settings, ManualClock(datetime.fromisoformat(CLOSED_UTC)), rasa, trackers)
    trackers.visitor("v1", "I want a human", "request_human")
    watch.poll_once()
    assert rasa.names("utter") == ["utter_handoff_closed"]


def test_first_risk_message_leaves_the_crisis_reply_to_rasa_then_hands_over(
    settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile
) -> None:
    watch = watcher(settings, clock, rasa, trackers)
    trackers.visitor("v1", "I cut myself tonight", "risk_acute")
    trackers.add("v1", BotUttered(text="crisis reply from the Rasa rule"))
    watch.poll_once()
    assert open_tickets(settings) == [("v1", "risk", "acute", 1, "new")]
    assert rasa.names("utter") == ["utter_handoff_open"]  # no second crisis reply from us


def bot_says(trackers: TrackerFile, sender: str, response: str) -> None:
    """A turn's reply as Rasa stores it: the action, then what it uttered."""
    trackers.add(sender, ActionExecuted(response), BotUttered(text=f"[{response}]"))


def none_of_these(trackers: TrackerFile, sender: str) -> None:
    """A miss, the clarifying question, "None of these", and the rule's reply that brings in a person."""
    trackers.visitor(sender, "flurb zaxxon", "nlu_fallback")
    bot_says(trackers, sender, "utter_clarify_topics")
    trackers.visitor(sender, "/deny", "deny")
    bot_says(trackers, sender, "utter_fallback_offer_person")


@pytest.mark.parametrize("handoff", ["asked for a person", "none of these"])
def test_a_risk_message_while_paused_still_gets_the_crisis_reply_first(
    settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile, handoff: str
) -> None:
    watch = watcher(settings, clock, rasa, trackers)
    if handoff == "none of these":
        none_of_these(trackers, "v1")
    else:
        trackers.visitor("v1", "talk to someone", "request_human")
    watch.poll_once()
    assert trackers.is_paused("v1")
    rasa.calls.clear()
    trackers.visitor("v1", "I am going to end it tonight", "risk_imminent")
    watch.poll_once()
    assert rasa.calls[0] == ("utter", "v1", "utter_risk_imminent")
    assert ("pause", "v1") not in rasa.calls  # already paused: no second handoff notice
    assert open_tickets(settings) == [("v1", "risk", "imminent", 0, "new")]


def test_messages_while_paused_are_kept_and_acknowledged_sparingly(
    settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile
) -> None:
    watch = watcher(settings, clock, rasa, trackers)
    trackers.visitor("v1", "person please", "request_human")
    watch.poll_once()
    rasa.calls.clear()
    trackers.visitor("v1", "my name is <b>Alex</b>", "greet")
    watch.poll_once()
    trackers.visitor("v1", "hello?", "greet")
    watch.poll_once()
    assert rasa.names("utter") == ["utter_handoff_message_kept"]
    clock.advance(minutes=5)
    trackers.visitor("v1", "still there?", "greet")
    watch.poll_once()
    assert rasa.names("utter") == ["utter_handoff_message_kept", "utter_handoff_message_kept"]
    with session_scope(settings.database_url) as session:
        assert session.query(Ticket).one().last_visitor_message_at is not None


def test_two_fallbacks_in_a_row_mean_the_assistant_could_not_help(
    settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile
) -> None:
    watch = watcher(settings, clock, rasa, trackers)
    trackers.visitor("v1", "blorp", "nlu_fallback")
    trackers.visitor("v1", "hi", "greet")
    trackers.visitor("v1", "zzz", "nlu_fallback")
    watch.poll_once()
    assert open_tickets(settings) == []
    trackers.visitor("v1", "qqq", "nlu_fallback")
    watch.poll_once()
    assert open_tickets(settings) == [("v1", "could_not_help", None, 3, "new")]


def test_none_of_these_brings_in_a_person_like_asking_for_one(
    settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile
) -> None:
    watch = watcher(settings, clock, rasa, trackers)
    none_of_these(trackers, "v1")
    trackers.visitor("v2", "/deny", "deny")  # a "no" elsewhere is not a request for a person
    watch.poll_once()
    assert open_tickets(settings) == [("v1", "could_not_help", None, 3, "new")]
    assert rasa.calls == [("pause", "v1"), ("utter", "v1", "utter_handoff_open")]
    assert trackers.is_paused("v1")


def test_the_second_miss_and_the_offer_that_follows_make_one_handoff(
    settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile
) -> None:
    watch = watcher(settings, clock, rasa, trackers)
    trackers.visitor("v1", "blorp", "nlu_fallback")
    bot_says(trackers, "v1", "utter_clarify_topics")
    trackers.visitor("v1", "qqq", "nlu_fallback")
    bot_says(trackers, "v1", "utter_fallback_offer_person")
    watch.poll_once()
    assert open_tickets(settings) == [("v1", "could_not_help", None, 3, "new")]
    assert rasa.calls == [("pause", "v1"), ("utter", "v1", "utter_handoff_open")]
    with session_scope(settings.database_url) as session:
        assert [entry.action for entry in session.query(AuditEntry)] == ["ticket_opened"]


def test_first_start_skips_conversations_from_before(
    settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile
) -> None:
    trackers.visitor("old", "a person please", "request_human")
    watch = TrackerStorePoller(Watcher(settings, clock, rasa))
    assert watch.poll_once() == 0
    trackers.visitor("new", "a person please", "request_human")
    assert watch.poll_once() == 1
    assert [row[0] for row in open_tickets(settings)] == ["new"]


def test_a_failing_rasa_does_not_lose_the_ticket(
    settings: HandoffSettings, clock: ManualClock, trackers: TrackerFile
) -> None:
    class DownRasa(FakeRasa):
        def pause(self, conversation_id: str) -> None:
            raise ConnectionError("Rasa restarting")

        def utter(self, conversation_id: str, response: str, slots: dict | None = None) -> None:
            raise ConnectionError("Rasa restarting")

    watch = watcher(settings, clock, DownRasa(trackers), trackers)
    trackers.visitor("v1", "person", "request_human")
    watch.poll_once()
    assert open_tickets(settings) == [("v1", "asked_for_person", None, 3, "new")]


def test_inside_a_form_asking_for_a_person_leaves_the_form_running_but_risk_still_hands_over(
    settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile
) -> None:
    watch = watcher(settings, clock, rasa, trackers)
    trackers.add("v1", ActiveLoop("intake_form"))
    trackers.visitor("v1", "can I talk to a person", "request_human")
    watch.poll_once()
    assert open_tickets(settings) == [] and rasa.calls == []
    trackers.visitor("v1", "I took all my pills", "risk_imminent")
    trackers.add("v1", BotUttered(text="crisis reply"), ActiveLoop(None))
    watch.poll_once()
    assert open_tickets(settings) == [("v1", "risk", "imminent", 0, "new")]
    assert rasa.calls == [("pause", "v1"), ("utter", "v1", "utter_handoff_open")]
    rasa.calls.clear()
    trackers.add("v2", ActiveLoop("intake_form"), ActiveLoop(None))
    trackers.visitor("v2", "a person please", "request_human")
    watch.poll_once()
    assert ("pause", "v2") in rasa.calls  # the form had ended: a normal handoff
