"""Risk events recorded in the application database but never turned into tickets (their broker event was
lost: RabbitMQ down, then the Rasa process died) get one from the reconciliation, once.

On SQLite and on the real PostgreSQL (127.0.0.1:5432); the last test runs the staff side's background
workers against the real RabbitMQ too.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, List

import pytest
from rasa.shared.core.events import UserUttered

from bot.db import session_scope
from bot.handoff import tickets
from bot.handoff.clock import ManualClock
from bot.handoff.config import HandoffSettings
from bot.handoff.models import REASON_ASKED_FOR_PERSON, STATUS_CLOSED, AuditEntry, OutboxMessage, Ticket
from bot.handoff.reconcile import reconcile_risk_events
from bot.handoff.watcher import BackgroundWorkers, TrackerStorePoller, Watcher
from bot.safety.models import RiskEvent
from bot.safety.risk_events import RiskTurn, record
from tests.db_urls import migrated_database
from tests.handoff.conftest import FakeRasa, TrackerFile, make_settings
from tests.handoff.rabbit import ThrowawayQueues, rasa_body, unreachable_reason, wait_until


@pytest.fixture(params=["sqlite", "postgresql"])
def app_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HandoffSettings]:
    for url in migrated_database(request.param, tmp_path, "reconciletest"):
        yield make_settings(tmp_path, database_url=url)


def later_clock(minutes: float = 2) -> ManualClock:
    """Risk events are stamped with the real time when recorded; the staff side looks a bit later."""
    return ManualClock(datetime.now(tz=timezone.utc) + timedelta(minutes=minutes))


def recorded(settings: HandoffSettings, conversation: str, level: str = "acute", message: str = "m1") -> None:
    """What the Rasa server's tracker store writes for a risk turn (bot/safety/tracker_store.py)."""
    record([RiskTurn(conversation, message, level, 0.97, "self_harm", ["rule:test"])], settings.database_url)


def ticket_rows(settings: HandoffSettings) -> List[tuple]:
    with session_scope(settings.database_url) as session:
        rows = session.query(Ticket).order_by(Ticket.id)
        return [(t.conversation_id, t.reason, t.risk_level, t.status) for t in rows]


def count(settings: HandoffSettings, model: type) -> int:
    with session_scope(settings.database_url) as session:
        return int(session.query(model).count())


def test_a_risk_event_without_a_ticket_gets_one_with_its_notice_once(app_settings: HandoffSettings) -> None:
    recorded(app_settings, "lost-1", "imminent")
    clock = later_clock()
    (ticket_id,) = reconcile_risk_events(app_settings, clock)
    assert ticket_rows(app_settings) == [("lost-1", "risk", "imminent", "new")]
    assert count(app_settings, OutboxMessage) == 1  # staff are notified as for any new ticket
    assert reconcile_risk_events(app_settings, clock) == []  # idempotent: the cursor and the ticket
    assert ticket_rows(app_settings) == [("lost-1", "risk", "imminent", "new")]
    with session_scope(app_settings.database_url) as session:
        entry = session.query(AuditEntry).filter(AuditEntry.action == "ticket_reconciled").one()
        assert entry.ticket_id == ticket_id and entry.staff_username == "system"


def test_a_risk_message_the_watcher_handled_is_not_ticketed_again(
    app_settings: HandoffSettings, tmp_path: Path
) -> None:
    trackers = TrackerFile(tmp_path / "tracker.db")
    settings = dataclasses.replace(app_settings, tracker_store_url=f"sqlite:///{tmp_path / 'tracker.db'}")
    clock = later_clock()
    trackers.visitor("warmup", "hello", "greet")
    poller = TrackerStorePoller(Watcher(settings, clock, FakeRasa(trackers)))
    poller.poll_once()  # the first pass sets the cursor: older rows are history
    trackers.visitor("seen-1", "I want to die", "risk_acute")
    assert poller.poll_once() == 1
    recorded(settings, "seen-1", "acute")
    assert reconcile_risk_events(settings, clock) == []
    assert ticket_rows(settings) == [("seen-1", "risk", "acute", "new")]
    assert count(settings, OutboxMessage) == 1


def test_the_watcher_gets_the_first_chance_and_old_history_is_left_alone(app_settings: HandoffSettings) -> None:
    recorded(app_settings, "just-now")
    assert reconcile_risk_events(app_settings, later_clock(minutes=0.5)) == []  # inside the grace period
    assert ticket_rows(app_settings) == []
    assert len(reconcile_risk_events(app_settings, later_clock(minutes=2))) == 1
    recorded(app_settings, "long-ago", message="m2")
    assert reconcile_risk_events(app_settings, later_clock(minutes=60 * 25)) == []  # older than a day
    assert [row[0] for row in ticket_rows(app_settings)] == ["just-now"]


def test_a_closed_or_less_urgent_ticket_does_not_count(app_settings: HandoffSettings) -> None:
    clock = later_clock()
    with session_scope(app_settings.database_url) as session:
        closed = tickets.open_ticket(session, clock, "closed-before", "risk", "acute", app_settings.console_url).ticket
        closed.status, closed.closed_at = STATUS_CLOSED, datetime.now(tz=timezone.utc) - timedelta(minutes=10)
        tickets.open_ticket(session, clock, "asked-before", REASON_ASKED_FOR_PERSON, None, app_settings.console_url)
    recorded(app_settings, "closed-before", "acute")
    recorded(app_settings, "asked-before", "concern")
    assert len(reconcile_risk_events(app_settings, clock)) == 2
    assert ticket_rows(app_settings) == [
        ("closed-before", "risk", "acute", STATUS_CLOSED),
        ("asked-before", "risk", "concern", "new"),  # raised from "asked for a person"
        ("closed-before", "risk", "acute", "new"),  # a new one: the old was closed before this event
    ]


def test_the_staff_side_opens_the_lost_ticket_at_start_up_and_the_late_broker_event_adds_nothing(
    app_settings: HandoffSettings, tmp_path: Path
) -> None:
    """The whole story on the real services: RabbitMQ was down when the visitor wrote, the Rasa process
    died before publishing, and the staff side (re)starts consuming from the broker."""
    reason = unreachable_reason()
    if reason:
        pytest.skip(f"{reason}: this test needs the real broker")
    queues = ThrowawayQueues.fresh()
    trackers = TrackerFile(tmp_path / "tracker.db")
    settings = dataclasses.replace(
        app_settings, tracker_store_url=f"sqlite:///{tmp_path / 'tracker.db'}", event_source="broker",
        broker_exchange=queues.exchange, broker_queue=queues.queue, outbox_poll_seconds=0.2,
    )
    trackers.visitor("warmup", "hello", "greet")
    clock = later_clock()
    rasa = FakeRasa(trackers)
    workers = BackgroundWorkers(settings, clock, rasa)
    risk = UserUttered("I took all the pills", intent={"name": "risk_imminent", "confidence": 0.9},
                       parse_data={"intent": {"name": "risk_imminent", "confidence": 0.9}, "entities": []})
    workers.start()
    try:
        wait_until(lambda: workers._consumer is not None and workers._consumer.consumer.connected.is_set(), 15,
                   "consuming")  # the consumer's baseline is set: what follows is new
        trackers.add("lost-2", risk)  # stored by Rasa; its broker event never left the dying process
        recorded(settings, "lost-2", "imminent")
        workers.stop()
        workers = BackgroundWorkers(settings, clock, rasa)  # the staff side restarts
        workers.start()
        wait_until(lambda: ticket_rows(settings) == [("lost-2", "risk", "imminent", "new")], 10,
                   "the ticket from the start-up pass")
        # Had the event been published after all (e.g. late, on a reconnect), nothing is doubled.
        queues.publish(rasa_body("lost-2", risk))
        wait_until(lambda: ("pause", "lost-2") in rasa.calls, 10, "the late event handled by the watcher")
    finally:
        workers.stop()
        queues.delete()
    assert ticket_rows(settings) == [("lost-2", "risk", "imminent", "new")]
    with session_scope(settings.database_url) as session:
        assert session.query(OutboxMessage).count() == 1
        assert session.query(RiskEvent).count() == 1
