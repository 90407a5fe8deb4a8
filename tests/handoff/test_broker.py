"""The staff side consuming Rasa's events from the real RabbitMQ (127.0.0.1:5672, throwaway queues).

Events are stored with Rasa's own SQLTrackerStore (as the Rasa server does) and published with the body
Rasa's pika broker sends; the consumer runs in its thread as in the website process.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from contextlib import contextmanager
from typing import Any, Iterator, List

import pytest
from rasa.shared.core.events import ActionExecuted, BotUttered, ConversationPaused, UserUttered

from bot.db import session_scope
from bot.handoff.broker import BrokerConsumer, ConsumerThread, UndecodableMessage, decode
from bot.handoff.clock import ManualClock
from bot.handoff.config import HandoffSettings
from bot.handoff.models import HandledEvent, Ticket
from bot.handoff.routing import ConversationRouter, RoutedControl
from bot.handoff.watcher import TrackerStorePoller, Watcher
from tests.handoff.conftest import FakeRasa, TrackerFile
from tests.handoff.rabbit import TcpProxy, ThrowawayQueues, rasa_body, unreachable_reason, wait_until


def visitor(text: str, intent: str) -> UserUttered:
    parse_data = {"intent": {"name": intent, "confidence": 0.93}, "entities": [], "text": text}
    return UserUttered(text, intent=parse_data["intent"], parse_data=parse_data, input_channel="socketio")


def tickets(settings: HandoffSettings) -> List[tuple]:
    with session_scope(settings.database_url) as session:
        return [(t.conversation_id, t.reason, t.risk_level) for t in session.query(Ticket).order_by(Ticket.id)]


def marks(settings: HandoffSettings) -> List[tuple]:
    with session_scope(settings.database_url) as session:
        return [
            (m.conversation_id, m.source, m.publisher)
            for m in session.query(HandledEvent).order_by(HandledEvent.event_id)
        ]


# --- decoding (no broker needed) ----------------------------------------------------------------------


def test_decode_reads_the_body_rasa_publishes() -> None:
    message = visitor("I cut myself again", "risk_acute")
    decoded = decode(rasa_body("v-1", message), app_id="rasa-2")
    assert (decoded.sender_id, decoded.type_name, decoded.text, decoded.intent_name, decoded.publisher) == (
        "v-1", "user", "I cut myself again", "risk_acute", "rasa-2",
    )
    assert decoded.timestamp == message.timestamp  # exact: it is how the stored row is found
    assert decode(rasa_body("v-1", BotUttered(text="hi"))).type_name == "bot"
    paused = decode(rasa_body("v-1", ConversationPaused()))
    assert (paused.type_name, paused.intent_name, paused.publisher) == ("pause", None, None)


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe",
        b"not json",
        b"[1, 2]",
        b'{"event": "user", "timestamp": 1.5}',
        b'{"sender_id": "", "event": "user", "timestamp": 1.5}',
        b'{"sender_id": "v", "timestamp": 1.5}',
        b'{"sender_id": "v", "event": "user", "timestamp": "yesterday"}',
        b'{"sender_id": "v", "event": "user", "timestamp": true}',
    ],
)
def test_decode_refuses_what_rasa_never_sends(body: bytes) -> None:
    with pytest.raises(UndecodableMessage):
        decode(body)


# --- against the real broker ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rabbitmq() -> None:
    reason = unreachable_reason()
    if reason:
        pytest.skip(f"{reason}: these tests need the real broker")


@pytest.fixture
def queues(rabbitmq: None) -> Iterator[ThrowawayQueues]:
    made = ThrowawayQueues.fresh()
    yield made
    made.delete()


@pytest.fixture
def broker_settings(settings: HandoffSettings, queues: ThrowawayQueues) -> HandoffSettings:
    return dataclasses.replace(
        settings, event_source="broker", broker_exchange=queues.exchange, broker_queue=queues.queue
    )


@pytest.fixture(autouse=True)
def tracker_table(trackers: TrackerFile) -> None:
    trackers.add("warmup", BotUttered(text="hello"))  # the events table exists, as on a running server


@contextmanager
def consuming(consumer: BrokerConsumer, wait_connected: bool = True) -> Iterator[BrokerConsumer]:
    thread = ConsumerThread(consumer)
    thread.start()
    try:
        if wait_connected:
            wait_until(consumer.connected.is_set, 15, "the consumer is connected")
        yield consumer
    finally:
        thread.stop()


def consumer_for(settings: HandoffSettings, clock: ManualClock, rasa: Any, **options: Any) -> BrokerConsumer:
    return BrokerConsumer(settings, Watcher(settings, clock, rasa), **options)


def say(trackers: TrackerFile, queues: ThrowawayQueues, sender: str, *events: Any, app_id: str | None = None) -> None:
    """What a Rasa server does for one turn: publish each new event, then store the turn."""
    for event in events:
        queues.publish(rasa_body(sender, event), app_id=app_id)
    trackers.add(sender, *events)


def test_a_risk_message_from_the_queue_opens_a_ticket_and_hands_over(
    broker_settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile,
    queues: ThrowawayQueues,
) -> None:
    with consuming(consumer_for(broker_settings, clock, rasa)) as consumer:
        say(trackers, queues, "v1", visitor("I want to end it", "risk_acute"),
            ActionExecuted("utter_risk_acute"), BotUttered(text="crisis reply"), ActionExecuted("action_listen"))
        wait_until(lambda: rasa.calls[-1:] == [("utter", "v1", "utter_handoff_open")], 10, "the handover")
        # The queue empties when RabbitMQ hands the messages out; the counts move once each ack is settled.
        wait_until(lambda: consumer.counts["handled"] + consumer.counts["ignored"] == 4, 10, "every message acked")
        wait_until(lambda: queues.waiting(queues.queue) == 0, 10, "the queue empty")
    assert tickets(broker_settings) == [("v1", "risk", "acute")]
    assert rasa.calls == [("pause", "v1"), ("utter", "v1", "utter_handoff_open")]
    assert marks(broker_settings) == [("v1", "broker", None)]
    assert consumer.counts["handled"] == 1 and consumer.counts["ignored"] == 3
    assert queues.waiting(queues.parked) == 0


def test_a_redelivered_event_opens_one_ticket_and_pauses_once(
    broker_settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile,
    queues: ThrowawayQueues,
) -> None:
    asking = visitor("can I talk to a person", "request_human")
    with consuming(consumer_for(broker_settings, clock, rasa)) as consumer:
        say(trackers, queues, "v1", asking)
        wait_until(lambda: consumer.counts["handled"] == 1, 10, "the first delivery handled")
        queues.publish(rasa_body("v1", asking))  # the same event again, as RabbitMQ redelivers it
        queues.publish(rasa_body("v1", asking))
        wait_until(lambda: consumer.counts["skipped"] == 2, 10, "both redeliveries acked")
        # In a paused conversation a risk message gets the crisis reply from us: once, however delivered.
        risk = visitor("I took all my pills", "risk_imminent")
        say(trackers, queues, "v1", risk)
        queues.publish(rasa_body("v1", risk))
        wait_until(lambda: consumer.counts["skipped"] == 3, 10, "the risk message's redelivery acked")
    assert tickets(broker_settings) == [("v1", "risk", "imminent")]  # one ticket, raised to imminent
    assert rasa.calls == [
        ("pause", "v1"), ("utter", "v1", "utter_handoff_open"), ("utter", "v1", "utter_risk_imminent")
    ]
    assert queues.waiting(queues.queue) == 0


def test_an_event_published_before_rasa_stored_it_is_requeued_until_it_is(
    broker_settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile,
    queues: ThrowawayQueues,
) -> None:
    """Rasa publishes before it commits; a slow commit must cost retries, not the event."""
    late = visitor("a real person please", "request_human")
    options = dict(store_wait_seconds=0.1, retry_first_seconds=0.1, max_attempts=30)
    with consuming(consumer_for(broker_settings, clock, rasa, **options)) as consumer:
        queues.publish(rasa_body("v1", late))
        wait_until(lambda: consumer.counts["requeued"] >= 2, 10, "the event requeued while not stored")
        assert tickets(broker_settings) == []
        trackers.add("v1", late)
        wait_until(lambda: consumer.counts["handled"] == 1, 10, "handled once stored")
    assert tickets(broker_settings) == [("v1", "asked_for_person", None)]
    assert queues.waiting(queues.queue) == 0 and queues.waiting(queues.parked) == 0


def test_an_event_that_cannot_be_handled_is_parked_after_the_last_attempt_not_lost(
    broker_settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile,
    queues: ThrowawayQueues, caplog: pytest.LogCaptureFixture,
) -> None:
    never_stored = rasa_body("v1", visitor("help me", "request_human"))
    options = dict(store_wait_seconds=0.05, retry_first_seconds=0.05, max_attempts=3)
    consumer = consumer_for(broker_settings, clock, rasa, **options)
    with caplog.at_level(logging.WARNING, logger="bot.handoff.broker"), consuming(consumer):
        queues.publish(never_stored)
        queues.publish(b"<html>not an event</html>")
        wait_until(lambda: consumer.counts["parked"] == 2, 15, "both messages parked")
    assert consumer.counts["requeued"] == 2  # three attempts for the first; none for the undecodable one
    parked = queues.take_all(queues.parked)
    assert sorted(body for body, _ in parked) == sorted([b"<html>not an event</html>", never_stored])
    reasons = {body: headers["x-parked-reason"] for body, headers in parked}
    assert reasons[never_stored].startswith("EventNotStored")
    assert reasons[b"<html>not an event</html>"].startswith("UndecodableMessage")
    assert queues.waiting(queues.queue) == 0 and tickets(broker_settings) == []
    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert any("after 3 attempts" in line and queues.parked in line for line in errors), errors


def test_a_restarted_consumer_does_not_give_a_poison_message_new_attempts(
    broker_settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile,
    queues: ThrowawayQueues, caplog: pytest.LogCaptureFixture,
) -> None:
    """The attempt count lives with the message, not in the consumer: three attempts in all, over two
    consumer processes (the first stopped while holding the message, as a crash or deploy would)."""
    poison = rasa_body("v1", visitor("help me", "request_human"))  # never stored: fails every time
    first = consumer_for(broker_settings, clock, rasa, store_wait_seconds=0.05, retry_first_seconds=60,
                         max_attempts=3)
    with caplog.at_level(logging.WARNING, logger="bot.handoff.broker"), consuming(first):
        queues.publish(poison)
        wait_until(lambda: "attempt 1 of 3" in caplog.text, 10, "the first attempt failed")
    assert first.counts["requeued"] == 0  # stopped during its pause, still holding the message
    second = consumer_for(broker_settings, clock, rasa, store_wait_seconds=0.05, retry_first_seconds=0.05,
                          max_attempts=3)
    with consuming(second):
        wait_until(lambda: second.counts["parked"] == 1, 15, "the poison message parked")
    # Attempt 2 (the redelivery) went back to the queue once, carrying its count; attempt 3 parked it.
    # A consumer that counted in memory would have started again at 1 and requeued it twice.
    assert second.counts["requeued"] == 1
    ((body, headers),) = queues.take_all(queues.parked)
    assert body == poison and int(headers["x-handoff-attempts"]) == 3
    assert queues.waiting(queues.queue) == 0 and tickets(broker_settings) == []


def test_a_turn_that_was_never_stored_neither_holds_up_the_others_nor_is_retried_for_ever(
    broker_settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile,
    queues: ThrowawayQueues,
) -> None:
    """A Rasa process killed between publishing and committing leaves events that will never be stored."""
    stale = visitor("I want to die", "risk_acute")
    stale.timestamp = time.time() - 600  # sent ten minutes ago, still not stored: never will be
    fresh_but_lost = visitor("a person please", "request_human")
    options = dict(store_wait_seconds=0.3, retry_first_seconds=2.0, max_attempts=3)
    with consuming(consumer_for(broker_settings, clock, rasa, **options)) as consumer:
        queues.publish(rasa_body("lost-1", stale))
        queues.publish(rasa_body("lost-2", fresh_but_lost))
        started = time.monotonic()
        say(trackers, queues, "v1", visitor("can I talk to a person", "request_human"))
        wait_until(lambda: consumer.counts["handled"] == 1, 10, "the good event handled")
        handled_after = time.monotonic() - started
        assert consumer.counts["parked"] == 1 and consumer.counts["requeued"] == 0  # the stale one, at once
        # ... while the fresh lost one waits for its next attempt outside the line.
        assert handled_after < 1.5, handled_after
    assert tickets(broker_settings) == [("v1", "asked_for_person", None)]
    parked = queues.take_all(queues.parked)
    assert [headers["x-parked-reason"].split(":")[0] for _, headers in parked] == ["EventNeverStored"]


def test_a_slow_handoff_does_not_hold_up_other_conversations(
    broker_settings: HandoffSettings, clock: ManualClock, trackers: TrackerFile, queues: ThrowawayQueues,
) -> None:
    class SlowForOne(FakeRasa):
        def pause(self, conversation_id: str) -> None:
            if conversation_id == "slow":
                time.sleep(2.0)  # e.g. the Rasa process is busy with this conversation
            super().pause(conversation_id)

    rasa = SlowForOne(trackers)
    with consuming(consumer_for(broker_settings, clock, rasa)) as consumer:
        say(trackers, queues, "slow", visitor("a person please", "request_human"))
        wait_until(lambda: tickets(broker_settings) != [], 5, "the slow one's ticket")
        say(trackers, queues, "fast", visitor("I want to die", "risk_acute"))
        wait_until(lambda: ("pause", "fast") in rasa.calls, 1.5, "the other conversation handed over meanwhile")
        assert ("pause", "slow") not in rasa.calls
        wait_until(lambda: consumer.counts["handled"] == 2, 10, "both handled")


def test_messages_from_before_the_first_start_are_history(
    broker_settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile,
    queues: ThrowawayQueues,
) -> None:
    say(trackers, queues, "old", visitor("a person please", "request_human"))  # queued before anyone consumed
    with consuming(consumer_for(broker_settings, clock, rasa)) as consumer:
        say(trackers, queues, "new", visitor("a person please", "request_human"))
        wait_until(lambda: consumer.counts["handled"] == 1 and consumer.counts["skipped"] == 1, 10, "both acked")
    assert [row[0] for row in tickets(broker_settings)] == ["new"]


def test_pauses_and_replies_go_to_the_rasa_process_that_published_the_turn(
    broker_settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile,
    queues: ThrowawayQueues,
) -> None:
    second_process = FakeRasa(trackers)
    consumer = consumer_for(broker_settings, clock, rasa, controls={"rasa-2": second_process})
    with consuming(consumer):
        say(trackers, queues, "on-2", visitor("a person please", "request_human"), app_id="rasa-2")
        say(trackers, queues, "unknown", visitor("a person please", "request_human"), app_id="rasa-9")
        wait_until(lambda: consumer.counts["handled"] == 2, 10, "both handled")
    assert marks(broker_settings) == [("on-2", "broker", "rasa-2"), ("unknown", "broker", "rasa-9")]
    assert [call[:2] for call in second_process.calls] == [("pause", "on-2"), ("utter", "on-2")]
    assert [call[:2] for call in rasa.calls] == [("pause", "unknown"), ("utter", "unknown")]
    # The staff console's replies follow the same way, from what the consumer recorded.
    router = ConversationRouter(rasa, {"rasa-2": second_process}, broker_settings.database_url)
    router.staff_reply("on-2", "Hi, I'm here", "Dana")
    router.staff_reply("unknown", "Hi, I'm here", "Dana")
    router.resume("never-seen")
    assert second_process.calls[-1] == ("staff_reply", "on-2", "Hi, I'm here", "Dana")
    assert rasa.calls[-2:] == [("staff_reply", "unknown", "Hi, I'm here", "Dana"), ("resume", "never-seen")]


def test_a_process_that_does_not_answer_falls_back_to_the_default(
    settings: HandoffSettings, trackers: TrackerFile, rasa: FakeRasa
) -> None:
    class Restarting(FakeRasa):
        def pause(self, conversation_id: str) -> None:
            raise ConnectionError("process restarting")

    RoutedControl(Restarting(trackers), rasa).pause("v1")
    assert rasa.calls == [("pause", "v1")]


def test_the_tracker_store_poller_and_the_consumer_never_act_twice_on_one_event(
    broker_settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile,
    queues: ThrowawayQueues,
) -> None:
    """Switching sources (or a poller restarted before it saved its cursor) repeats nothing."""
    poller = TrackerStorePoller(Watcher(broker_settings, clock, rasa))
    poller.poll_once()  # its first cursor
    with consuming(consumer_for(broker_settings, clock, rasa)) as consumer:
        say(trackers, queues, "v1", visitor("a person please", "request_human"))
        wait_until(lambda: consumer.counts["handled"] == 1, 10, "handled from the broker")
    assert rasa.calls == [("pause", "v1"), ("utter", "v1", "utter_handoff_open")]
    assert poller.poll_once() == 3  # the poller reads the visitor's message (and the pause and notice) ...
    assert rasa.calls == [("pause", "v1"), ("utter", "v1", "utter_handoff_open")]  # ... and acts on none of it
    assert marks(broker_settings) == [("v1", "broker", None)] and len(tickets(broker_settings)) == 1


def test_the_consumer_waits_for_an_unreachable_broker_and_comes_back_after_an_outage(
    broker_settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile,
    queues: ThrowawayQueues, caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = TcpProxy()
    settings = dataclasses.replace(broker_settings, broker_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/")
    consumer = consumer_for(settings, clock, rasa, reconnect_max_seconds=1.0)
    with caplog.at_level(logging.INFO, logger="bot.handoff.broker"), consuming(consumer, wait_connected=False):
        # 1. Nothing listens yet: it keeps trying, and says so each time.
        time.sleep(2.5)
        assert not consumer.connected.is_set()
        tries = [r.getMessage() for r in caplog.records if "not consuming from the event broker" in r.getMessage()]
        assert len(tries) >= 2 and f"127.0.0.1:{proxy.port}" in tries[0] and "guest:guest" not in " ".join(tries)
        # 2. The broker is reachable: it connects and consumes.
        proxy.start()
        wait_until(consumer.connected.is_set, 10, "connected once the broker is reachable")
        say(trackers, queues, "before", visitor("a person please", "request_human"))
        wait_until(lambda: consumer.counts["handled"] == 1, 10, "handled before the outage")
        # 3. An outage: every connection dropped. What Rasa publishes meanwhile waits in the durable queue.
        proxy.cut()
        wait_until(lambda: not consumer.connected.is_set(), 10, "the lost connection noticed")
        say(trackers, queues, "during", visitor("I want to die", "risk_acute"))
        time.sleep(1.0)
        # Waiting: the new message, and the earlier one again if its ack was still on the wire when cut.
        waiting = queues.waiting(queues.queue)
        assert waiting in (1, 2) and consumer.counts["connections"] == 1
        proxy.start()
        wait_until(lambda: consumer.counts["handled"] == 2, 15, "handled after the broker came back")
        wait_until(lambda: consumer.counts["skipped"] == waiting - 1, 5, "a redelivered one skipped")
    assert consumer.counts["connections"] == 2
    assert tickets(broker_settings) == [("before", "asked_for_person", None), ("during", "risk", "acute")]
    assert any("consuming queue" in r.getMessage() for r in caplog.records)
