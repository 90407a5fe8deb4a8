from __future__ import annotations

from datetime import timedelta
from typing import Any, Dict, List, Tuple

import pytest
import requests
from sqlalchemy.orm import Session

from bot.db import session_scope
from bot.handoff import tickets
from bot.handoff.accounts import create_account
from bot.handoff.clock import ManualClock
from bot.handoff.config import HandoffSettings
from bot.handoff.models import AuditEntry, OutboxMessage, StaffAccount, Ticket
from bot.handoff.outbox import deliver_due

URL = "http://localhost:5600/staff"


def open_(settings: HandoffSettings, clock: ManualClock, conversation: str, reason: str, level: str | None = None):
    with session_scope(settings.database_url) as session:
        return tickets.open_ticket(session, clock, conversation, reason, level, URL)


def sam_and_the_open_ticket(session: Session, clock: ManualClock, conversation: str) -> Tuple[StaffAccount, Ticket]:
    """A new intake staff member, Sam, and the conversation's open ticket, both in `session`."""
    staff = create_account(session, clock, "sam", "Sam", "long enough password", "intake")
    ticket = tickets.open_ticket_for(session, conversation)
    assert ticket is not None
    return staff, ticket


def test_queue_is_ordered_by_urgency_then_waiting_time(settings: HandoffSettings, clock: ManualClock) -> None:
    open_(settings, clock, "asked-early", "asked_for_person")
    clock.advance(minutes=1)
    open_(settings, clock, "concern", "risk", "concern")
    clock.advance(minutes=1)
    open_(settings, clock, "could-not-help", "could_not_help")
    clock.advance(minutes=1)
    open_(settings, clock, "acute", "risk", "acute")
    clock.advance(minutes=1)
    open_(settings, clock, "imminent", "risk", "imminent")
    with session_scope(settings.database_url) as session:
        order = [ticket.conversation_id for ticket in tickets.queue(session)]
    assert order == ["imminent", "acute", "concern", "asked-early", "could-not-help"]


def test_one_open_ticket_per_conversation_and_urgency_only_rises(settings: HandoffSettings, clock: ManualClock) -> None:
    first = open_(settings, clock, "c1", "asked_for_person")
    assert first.created
    again = open_(settings, clock, "c1", "risk", "acute")
    assert (again.created, again.raised) == (False, True)
    lower = open_(settings, clock, "c1", "risk", "concern")
    assert (lower.created, lower.raised) == (False, False)
    with session_scope(settings.database_url) as session:
        only = session.query(Ticket).one()
        assert (only.priority, only.risk_level, only.reason) == (1, "acute", "risk")
        kinds = [message.kind for message in session.query(OutboxMessage).order_by(OutboxMessage.id)]
        assert kinds == ["new", "priority_raised"]
        actions = [entry.action for entry in session.query(AuditEntry).order_by(AuditEntry.id)]
        assert actions == ["ticket_opened", "ticket_priority_raised"]


def test_closed_ticket_lets_a_new_one_open(settings: HandoffSettings, clock: ManualClock) -> None:
    open_(settings, clock, "c1", "asked_for_person")
    with session_scope(settings.database_url) as session:
        staff, ticket = sam_and_the_open_ticket(session, clock, "c1")
        with pytest.raises(tickets.TicketError):
            tickets.close(session, clock, ticket, staff, "   ")
        tickets.close(session, clock, ticket, staff, "called back, booked intake")
    assert open_(settings, clock, "c1", "asked_for_person").created


def test_notification_carries_only_link_and_priority(settings: HandoffSettings, clock: ManualClock) -> None:
    opened = open_(settings, clock, "visitor-secret-id", "risk", "acute")
    with session_scope(settings.database_url) as session:
        payload = session.query(OutboxMessage).one().payload
    assert payload["ticket_url"] == f"{URL}/tickets/{opened.ticket.id}"
    assert payload["priority"] == "acute"
    assert "visitor-secret-id" not in str(payload)
    assert set(payload) == {"text", "priority", "ticket_url", "kind"}


def escalations(settings: HandoffSettings, clock: ManualClock) -> List[str]:
    with session_scope(settings.database_url) as session:
        return [t.conversation_id for t in tickets.escalate_unclaimed(session, clock, 5, URL)]


def test_unclaimed_urgent_tickets_escalate_once_after_the_configured_minutes(
    settings: HandoffSettings, clock: ManualClock
) -> None:
    open_(settings, clock, "imminent", "risk", "imminent")
    open_(settings, clock, "acute", "risk", "acute")
    open_(settings, clock, "concern", "risk", "concern")
    open_(settings, clock, "person", "asked_for_person")
    clock.advance(minutes=4, seconds=59)
    assert escalations(settings, clock) == []
    clock.advance(seconds=1)
    assert sorted(escalations(settings, clock)) == ["acute", "imminent"]
    clock.advance(minutes=30)
    assert escalations(settings, clock) == []
    with session_scope(settings.database_url) as session:
        kinds = sorted(m.kind for m in session.query(OutboxMessage) if m.kind == "escalation")
    assert kinds == ["escalation", "escalation"]


def test_a_claimed_ticket_does_not_escalate(settings: HandoffSettings, clock: ManualClock) -> None:
    open_(settings, clock, "acute", "risk", "acute")
    with session_scope(settings.database_url) as session:
        staff, ticket = sam_and_the_open_ticket(session, clock, "acute")
        tickets.claim(session, clock, ticket, staff)
    clock.advance(minutes=10)
    assert escalations(settings, clock) == []


class FlakyWebhook:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: List[Dict[str, Any]] = []

    def __call__(self, url: str, json: Dict[str, Any], timeout: float) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise requests.ConnectionError("webhook down")
        self.received.append(json)
        return type("Response", (), {"status_code": 200})()


def deliver(settings: HandoffSettings, clock: ManualClock, post: Any) -> Dict[str, int]:
    with session_scope(settings.database_url) as session:
        return deliver_due(session, clock, settings.webhook_url, post=post)


def test_outbox_survives_a_webhook_outage_with_backoff(settings: HandoffSettings, clock: ManualClock) -> None:
    open_(settings, clock, "c1", "risk", "imminent")
    webhook = FlakyWebhook(failures=3)
    assert deliver(settings, clock, webhook) == {"delivered": 0, "failed": 1}
    assert deliver(settings, clock, webhook) == {"delivered": 0, "failed": 0}  # waiting for the back-off
    clock.advance(seconds=2)
    assert deliver(settings, clock, webhook)["failed"] == 1
    clock.advance(seconds=4)
    assert deliver(settings, clock, webhook)["failed"] == 1
    clock.advance(seconds=8)
    assert deliver(settings, clock, webhook) == {"delivered": 1, "failed": 0}
    assert [message["priority"] for message in webhook.received] == ["imminent"]
    with session_scope(settings.database_url) as session:
        message = session.query(OutboxMessage).one()
        assert (message.status, message.attempts, message.last_error) == ("delivered", 4, None)
    clock.advance(minutes=10)
    assert deliver(settings, clock, webhook) == {"delivered": 0, "failed": 0}


def test_non_2xx_answers_are_retried(settings: HandoffSettings, clock: ManualClock) -> None:
    open_(settings, clock, "c1", "asked_for_person")

    def server_error(url: str, json: Dict[str, Any], timeout: float) -> Any:
        return type("Response", (), {"status_code": 503})()

    assert deliver(settings, clock, server_error) == {"delivered": 0, "failed": 1}
    with session_scope(settings.database_url) as session:
        message = session.query(OutboxMessage).one()
        assert message.status == "pending" and "503" in message.last_error
        assert message.next_attempt_at.replace(tzinfo=None) > clock.now().replace(tzinfo=None)
        assert message.next_attempt_at.replace(tzinfo=None) <= (clock.now() + timedelta(seconds=2)).replace(tzinfo=None)


def test_a_handed_back_ticket_goes_back_into_the_queue_when_needed_again(
    settings: HandoffSettings, clock: ManualClock
) -> None:
    open_(settings, clock, "c1", "risk", "concern")
    with session_scope(settings.database_url) as session:
        staff, ticket = sam_and_the_open_ticket(session, clock, "c1")
        tickets.claim(session, clock, ticket, staff)
        ticket.handed_back_at = clock.now()
    again = open_(settings, clock, "c1", "asked_for_person")
    assert (again.created, again.raised) == (False, True)
    with session_scope(settings.database_url) as session:
        ticket = session.query(Ticket).one()
        assert (ticket.status, ticket.claimed_by_id, ticket.handed_back_at) == ("new", None, None)
        assert (ticket.priority, ticket.risk_level) == (2, "concern")  # urgency never drops
        assert [m.kind for m in session.query(OutboxMessage).order_by(OutboxMessage.id)] == ["new", "new"]


def test_escalation_counts_from_when_the_ticket_became_urgent(settings: HandoffSettings, clock: ManualClock) -> None:
    open_(settings, clock, "c1", "asked_for_person")
    clock.advance(minutes=20)
    assert escalations(settings, clock) == []  # not urgent: never escalated
    open_(settings, clock, "c1", "risk", "acute")
    clock.advance(minutes=4)
    assert escalations(settings, clock) == []
    clock.advance(minutes=1)
    assert escalations(settings, clock) == ["c1"]
