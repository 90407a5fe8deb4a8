"""Tickets: one open ticket per conversation, ordered by urgency and then by how long it has waited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Dict, List

from sqlalchemy.orm import Session

from bot.handoff import audit
from bot.handoff.clock import Clock
from bot.handoff.models import (
    OPEN_STATUSES,
    REASON_RISK,
    STATUS_CLAIMED,
    STATUS_CLOSED,
    STATUS_NEW,
    OutboxMessage,
    StaffAccount,
    Ticket,
)
from bot.handoff.wording import wording

RISK_PRIORITY: Dict[str, int] = {"imminent": 0, "acute": 1, "concern": 2}
OTHER_PRIORITY = 3
PRIORITY_LABELS = {0: "imminent", 1: "acute", 2: "concern", 3: "other"}
# Tickets at or above this urgency are re-sent when nobody claims them in time.
ESCALATING_PRIORITY = RISK_PRIORITY["acute"]


class TicketError(ValueError):
    """An action that does not fit the ticket's state (e.g. closing a closed ticket)."""


def priority_for(reason: str, risk_level: str | None) -> int:
    if reason == REASON_RISK and risk_level in RISK_PRIORITY:
        return RISK_PRIORITY[risk_level]
    return OTHER_PRIORITY


def priority_label(ticket: Ticket) -> str:
    return PRIORITY_LABELS[int(ticket.priority)]


def open_ticket_for(session: Session, conversation_id: str) -> Ticket | None:
    return (
        session.query(Ticket)
        .filter(Ticket.conversation_id == conversation_id, Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.id.desc())
        .first()
    )


@dataclass(frozen=True)
class Opened:
    ticket: Ticket
    created: bool
    raised: bool


def open_ticket(
    session: Session, clock: Clock, conversation_id: str, reason: str, risk_level: str | None, console_url: str
) -> Opened:
    """Opens a ticket, or raises the urgency of the conversation's open one; queues the staff notification."""
    now = clock.now()
    priority = priority_for(reason, risk_level)
    existing = open_ticket_for(session, conversation_id)
    if existing is not None and existing.handed_back_at is not None:
        # Handed back to the bot, then the visitor needs a person again: back into the queue, unclaimed.
        existing.status, existing.claimed_by_id, existing.claimed_at = STATUS_NEW, None, None
        existing.handed_back_at, existing.updated_at, existing.escalated_at = None, now, None
        existing.priority = min(int(existing.priority), priority)
        if priority <= existing.priority:
            existing.reason, existing.risk_level = reason, risk_level
        enqueue_notification(session, clock, existing, "new", console_url)
        audit.record(session, clock, None, "ticket_reopened", existing.id, {"priority": priority_label(existing)})
        return Opened(existing, created=False, raised=True)
    if existing is not None:
        if priority >= existing.priority:
            return Opened(existing, created=False, raised=False)
        existing.priority, existing.reason, existing.risk_level, existing.updated_at = priority, reason, risk_level, now
        enqueue_notification(session, clock, existing, "priority_raised", console_url)
        audit.record(
            session, clock, None, "ticket_priority_raised", existing.id, {"priority": priority_label(existing)}
        )
        return Opened(existing, created=False, raised=True)
    ticket = Ticket(
        conversation_id=conversation_id,
        reason=reason,
        risk_level=risk_level,
        priority=priority,
        status=STATUS_NEW,
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    session.flush()
    enqueue_notification(session, clock, ticket, "new", console_url)
    audit.record(
        session, clock, None, "ticket_opened", ticket.id, {"reason": reason, "priority": priority_label(ticket)}
    )
    return Opened(ticket, created=True, raised=False)


def queue(session: Session) -> List[Ticket]:
    """Open tickets, most urgent first; equal urgency: the one waiting longest first."""
    return (
        session.query(Ticket)
        .filter(Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.priority.asc(), Ticket.created_at.asc(), Ticket.id.asc())
        .all()
    )


def claim(session: Session, clock: Clock, ticket: Ticket, staff: StaffAccount) -> None:
    if ticket.status == STATUS_CLOSED:
        raise TicketError("this ticket is closed")
    ticket.status, ticket.claimed_by_id, ticket.claimed_at, ticket.updated_at = (
        STATUS_CLAIMED,
        staff.id,
        clock.now(),
        clock.now(),
    )
    audit.record(session, clock, staff, "ticket_claimed", ticket.id)


def close(session: Session, clock: Clock, ticket: Ticket, staff: StaffAccount, outcome_note: str) -> None:
    if ticket.status == STATUS_CLOSED:
        raise TicketError("this ticket is already closed")
    if not outcome_note.strip():
        raise TicketError("an outcome note is required to close a ticket")
    ticket.status, ticket.closed_at, ticket.updated_at = STATUS_CLOSED, clock.now(), clock.now()
    ticket.outcome_note = outcome_note.strip()
    if ticket.claimed_by_id is None:
        ticket.claimed_by_id, ticket.claimed_at = staff.id, clock.now()
    audit.record(session, clock, staff, "ticket_closed", ticket.id, {"outcome_note": ticket.outcome_note})


def enqueue_notification(session: Session, clock: Clock, ticket: Ticket, kind: str, console_url: str) -> OutboxMessage:
    """Only the link and the urgency leave the building: no names, no message text."""
    link = f"{console_url.rstrip('/')}/tickets/{ticket.id}"
    label = priority_label(ticket)
    headline = wording().notices[kind]
    message = OutboxMessage(
        ticket_id=ticket.id,
        kind=kind,
        payload={
            "text": f"{headline} (priority: {label}): {link}",
            "priority": label,
            "ticket_url": link,
            "kind": kind,
        },
        status="pending",
        attempts=0,
        created_at=clock.now(),
        next_attempt_at=clock.now(),
    )
    session.add(message)
    return message


def escalate_unclaimed(session: Session, clock: Clock, after_minutes: float, console_url: str) -> List[Ticket]:
    """Re-sends imminent/acute tickets that nobody claimed within `after_minutes`; each one once.

    The clock starts when the ticket became what it is now (`updated_at`): opened, raised to this
    urgency, or back in the queue after a hand-back.
    """
    cutoff = clock.now() - timedelta(minutes=after_minutes)
    overdue = (
        session.query(Ticket)
        .filter(
            Ticket.status == STATUS_NEW,
            Ticket.priority <= ESCALATING_PRIORITY,
            Ticket.escalated_at.is_(None),
            Ticket.updated_at <= cutoff,
        )
        .all()
    )
    for ticket in overdue:
        ticket.escalated_at = clock.now()
        enqueue_notification(session, clock, ticket, "escalation", console_url)
        audit.record(session, clock, None, "ticket_escalated", ticket.id, {"after_minutes": after_minutes})
    return overdue
