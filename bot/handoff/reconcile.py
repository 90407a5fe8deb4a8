"""Tickets for recorded risk events that never reached the watcher (issue 8).

The watcher hears of visitor messages from RabbitMQ in production. If RabbitMQ is down, Rasa keeps the
events it could not publish in memory; if that Rasa process then dies, they are gone, and a risk message
never becomes a ticket. The Rasa server also records every risk turn in the application database
(`risk_events`, bot/safety/tracker_store.py), independently of the broker. This pass, run by the staff
side at start-up and then every EVERY_SECONDS, opens a ticket for each recorded risk event that has none.

"Has a ticket": the conversation has a ticket at least as urgent as the event that was still open when
the event was recorded (open now, or closed after it). That is exactly what the watcher leaves behind
when it handles the message (a new ticket, a raised one, or an open one already that urgent), so an
event the broker path handled is never ticketed twice, and tickets.open_ticket keeps one open ticket per
conversation if the broker path comes later. Events younger than GRACE are left to the watcher (which
also pauses the conversation and tells the visitor); events older than LOOKBACK are history (a first
deployment does not turn last month into tickets). Here only the ticket and its staff notification are
made: a visitor whose turn is minutes or hours old is not paused or messaged after the fact.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import List

from sqlalchemy.orm import Session

from bot.db import session_scope
from bot.handoff import audit, tickets
from bot.handoff.clock import Clock, as_utc
from bot.handoff.config import HandoffSettings
from bot.handoff.models import OPEN_STATUSES, REASON_RISK, Ticket, WatcherCursor
from bot.safety.models import RiskEvent

log = logging.getLogger(__name__)
CURSOR_NAME = "risk_events_reconciled"
EVERY_SECONDS = 60.0
GRACE = timedelta(seconds=60)
LOOKBACK = timedelta(hours=24)
BATCH = 500


def has_ticket(session: Session, conversation_id: str, level: str, recorded_at: datetime) -> bool:
    wanted = tickets.priority_for(REASON_RISK, level)
    candidates = session.query(Ticket).filter(Ticket.conversation_id == conversation_id, Ticket.priority <= wanted)
    return any(
        ticket.status in OPEN_STATUSES or (ticket.closed_at is not None and as_utc(ticket.closed_at) >= recorded_at)
        for ticket in candidates
    )


def reconcile_risk_events(
    settings: HandoffSettings, clock: Clock, grace: timedelta = GRACE, lookback: timedelta = LOOKBACK
) -> List[int]:
    """One pass over the risk events recorded since the last one; returns the tickets opened or raised."""
    now = clock.now()
    changed: List[int] = []
    with session_scope(settings.database_url) as session:
        cursor = session.get(WatcherCursor, CURSOR_NAME)
        if cursor is None:
            cursor = WatcherCursor(name=CURSOR_NAME, last_event_id=0)
            session.add(cursor)
        events = (
            session.query(RiskEvent).filter(RiskEvent.id > cursor.last_event_id).order_by(RiskEvent.id).limit(BATCH)
        )
        for event in events:
            recorded_at = as_utc(event.created_at)
            if recorded_at > now - grace:
                break  # the watcher's turn first; this and later events are looked at next time
            wanted = recorded_at >= now - lookback
            if wanted and not has_ticket(session, event.conversation_id, event.level, recorded_at):
                opened = tickets.open_ticket(
                    session, clock, event.conversation_id, REASON_RISK, event.level, settings.console_url
                )
                audit.record(session, clock, None, "ticket_reconciled", opened.ticket.id, {"risk_event_id": event.id})
                changed.append(int(opened.ticket.id))
                # Ids only: the conversation id is the key to the visitor's transcript.
                log.warning(
                    "handoff: risk event %s had no ticket (its broker event was lost?); ticket %s opened or raised",
                    event.id, opened.ticket.id,
                )
            cursor.last_event_id = int(event.id)
    return changed
