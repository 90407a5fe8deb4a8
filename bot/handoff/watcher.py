"""Turns new visitor messages into tickets, pauses the conversation and tells the visitor what's next.

Why a watcher and not a custom action: the crisis replies are `utter_*` responses inside the Rasa server
and must never wait for the action server or for us. The watcher acts on turns Rasa has already handled
(so the visitor already has their reply), then acts through Rasa's HTTP API.

Where it hears of new messages is pluggable; the decisions (`Watcher`) are the same for both sources:
- `TrackerStorePoller` reads new rows of the SQL tracker store's events table (`make run`: no broker);
- `bot.handoff.broker.BrokerConsumer` consumes the events Rasa publishes to RabbitMQ (`make run-prod`).
Each event is acted on once: its tracker-store id is recorded in `handoff_handled_events` in the same
transaction as the ticket, so a redelivered event (or one seen by both sources) is skipped.

While a conversation is paused Rasa still parses and stores every visitor message (the safety component
still runs) but predicts nothing, so no crisis rule can fire. The watcher closes that gap: a risk
message in a paused conversation gets the matching `utter_risk_*` response from here, first, before
any bookkeeping.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Callable, Dict, List

from sqlalchemy.exc import IntegrityError

from bot.db import session_scope
from bot.handoff import reconcile, tickets
from bot.handoff.clock import Clock, as_utc
from bot.handoff.config import HandoffSettings
from bot.handoff.models import (
    REASON_ASKED_FOR_PERSON,
    REASON_COULD_NOT_HELP,
    REASON_RISK,
    STATUS_NEW,
    HandledEvent,
    WatcherCursor,
)
from bot.handoff.rasa_api import ConversationControl
from bot.handoff.transcript import TrackerEvent, TrackerStoreReader
from bot.settings import practice

if TYPE_CHECKING:
    from bot.handoff.broker import ConsumerThread

log = logging.getLogger(__name__)
CURSOR_NAME = "tracker_events"
RISK_INTENTS = {"risk_imminent": "imminent", "risk_acute": "acute", "risk_concern": "concern"}
HUMAN_INTENT = "request_human"
FALLBACK_INTENT = "nlu_fallback"
# "None of these" (or a typed "no") on the clarifying question: data/rules/boundaries.yml answers it with
# utter_fallback_offer_person, "I'm bringing in a person", so a ticket is opened to make that come true.
# Decided from the visitor's message (like the second miss in a row) so both event sources see it.
DENY_INTENT = "deny"
CLARIFY_ACTION = "utter_clarify_topics"
RASA_ATTEMPTS = 3
CURRENT = 2**62  # an event id after every real one: "is it paused now?"
# Redeliveries come within minutes; a week of "already handled" marks is plenty.
HANDLED_RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class Trigger:
    reason: str
    risk_level: str | None = None


class Watcher:
    def __init__(
        self,
        settings: HandoffSettings,
        clock: Clock,
        rasa: ConversationControl,
        reader: TrackerStoreReader | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.rasa = rasa
        self.reader = reader or TrackerStoreReader(settings.tracker_store_url)

    def handle(
        self,
        event: TrackerEvent,
        source: str,
        rasa: ConversationControl | None = None,
        publisher: str | None = None,
    ) -> bool:
        """Acts on one stored tracker event, once. False: not a visitor message, or already handled.

        `rasa` overrides where the pause and replies go (the broker consumer sends them to the Rasa
        process that handled the turn, `publisher`, the one holding the visitor's socket). Errors
        propagate: the source decides whether to retry.
        """
        if event.type_name != "user":
            return False
        if self._already_handled(event):
            log.info("handoff: tracker event %s was already handled; skipped", event.id)
            return False
        try:
            return self._on_user_message(event, source, rasa or self.rasa, publisher)
        except IntegrityError:
            # Another delivery of the same event committed first (its mark is the primary key).
            if self._already_handled(event):
                log.info("handoff: tracker event %s was handled concurrently; skipped", event.id)
                return False
            raise

    def _already_handled(self, event: TrackerEvent) -> bool:
        with session_scope(self.settings.database_url) as session:
            return session.get(HandledEvent, (event.id, event.sender_id)) is not None

    def _trigger(self, event: TrackerEvent) -> Trigger | None:
        intent = event.intent_name or ""
        if intent in RISK_INTENTS:
            return Trigger(REASON_RISK, RISK_INTENTS[intent])
        # Inside a form (the intake booking) the form's own rules answer "a person, please" with the phone
        # and carry on: booking the call is the way to a person there, so pausing would strand the form.
        # Risk messages are not affected: their rules end the form and hand over as everywhere else.
        if intent in (HUMAN_INTENT, FALLBACK_INTENT) and self.reader.active_form_before(event.sender_id, event.id):
            return None
        if intent == HUMAN_INTENT:
            return Trigger(REASON_ASKED_FOR_PERSON)
        if intent == DENY_INTENT and self.reader.last_action_before(event.sender_id, event.id) == CLARIFY_ACTION:
            return Trigger(REASON_COULD_NOT_HELP)
        if intent == FALLBACK_INTENT:
            needed = self.settings.fallbacks_before_handoff
            recent = self.reader.recent_user_intents(event.sender_id, event.id, needed)
            if len(recent) == needed and all(name == FALLBACK_INTENT for name in recent):
                return Trigger(REASON_COULD_NOT_HELP)
        return None

    def _on_user_message(
        self, event: TrackerEvent, source: str, rasa: ConversationControl, publisher: str | None
    ) -> bool:
        conversation = event.sender_id
        paused = self.reader.is_paused_before(conversation, event.id)
        trigger = self._trigger(event)
        if paused and trigger and trigger.risk_level:
            # Rasa ignores messages in a paused conversation: the crisis reply comes from here, first.
            self._call(rasa.utter, conversation, f"utter_risk_{trigger.risk_level}")
        acknowledge = False
        with session_scope(self.settings.database_url) as session:
            session.add(
                HandledEvent(
                    event_id=event.id,
                    conversation_id=conversation,
                    source=source,
                    publisher=publisher,
                    handled_at=self.clock.now(),
                )
            )
            ticket = None
            if trigger:
                ticket = tickets.open_ticket(
                    session, self.clock, conversation, trigger.reason, trigger.risk_level, self.settings.console_url
                ).ticket
            elif paused:
                ticket = tickets.open_ticket_for(session, conversation)
            if ticket is not None and paused:
                ticket.last_visitor_message_at = self.clock.now()
                acknowledge = not (trigger and trigger.risk_level) and self._should_acknowledge(ticket)
                if acknowledge:
                    ticket.visitor_acknowledged_at = self.clock.now()
        # Decided on the current state: a second trigger sent before our pause landed must not pause twice.
        if trigger and not self.reader.is_paused_before(conversation, CURRENT):
            self._hand_over(conversation, rasa)
        elif acknowledge:
            self._call(rasa.utter, conversation, "utter_handoff_message_kept")
        return True

    def _should_acknowledge(self, ticket: tickets.Ticket) -> bool:
        """Nobody left in silence, but no echo after every line: once per interval while nobody has joined."""
        if ticket.status != STATUS_NEW:
            return False
        last = ticket.visitor_acknowledged_at
        interval = timedelta(minutes=self.settings.acknowledge_every_minutes)
        return last is None or self.clock.now() - as_utc(last) >= interval

    def _hand_over(self, conversation: str, rasa: ConversationControl) -> None:
        facts = practice()
        is_open = facts.hours.is_open(facts.local_now(self.clock.now()))
        self._call(rasa.pause, conversation)
        self._call(rasa.utter, conversation, "utter_handoff_open" if is_open else "utter_handoff_closed")

    def _call(self, action: Callable[..., None], *args: str) -> None:
        for attempt in range(1, RASA_ATTEMPTS + 1):
            try:
                action(*args)
                return
            except Exception as error:
                log.warning("Rasa call %s%s failed (attempt %s): %s", action.__name__, args, attempt, error)
                time.sleep(0.2 * attempt)


class TrackerStorePoller:
    """Event source for `make run`: new rows of the tracker store's events table, in id order."""

    SOURCE = "tracker"

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.database_url = watcher.settings.database_url
        self.reader = watcher.reader

    def _cursor(self) -> int:
        with session_scope(self.database_url) as session:
            row = session.get(WatcherCursor, CURSOR_NAME)
            if row is None:
                # First start: conversations from before the staff side existed are not turned into tickets.
                row = WatcherCursor(name=CURSOR_NAME, last_event_id=self.reader.max_event_id())
                session.add(row)
            return int(row.last_event_id)

    def _advance(self, event_id: int) -> None:
        with session_scope(self.database_url) as session:
            row = session.get(WatcherCursor, CURSOR_NAME)
            assert row is not None
            row.last_event_id = max(int(row.last_event_id), event_id)

    def poll_once(self) -> int:
        events = self.reader.events_after(self._cursor())
        for event in events:
            try:
                self.watcher.handle(event, self.SOURCE)
            except Exception:  # one bad event must not stop handoffs for everyone else
                log.exception("handoff watcher failed on event %s", event.id)
            self._advance(event.id)
        return len(events)


def prune_handled_events(database_url: str, clock: Clock) -> int:
    with session_scope(database_url) as session:
        cutoff = clock.now() - HANDLED_RETENTION
        return int(session.query(HandledEvent).filter(HandledEvent.handled_at < cutoff).delete())


def run_escalations_and_outbox(settings: HandoffSettings, clock: Clock) -> dict:
    """One pass of the notifier: queue escalations that are due, then deliver what is pending."""
    from bot.handoff.outbox import deliver_due

    with session_scope(settings.database_url) as session:
        tickets.escalate_unclaimed(session, clock, settings.escalate_after_minutes, settings.console_url)
    with session_scope(settings.database_url) as session:
        return deliver_due(session, clock, settings.webhook_url, settings.webhook_timeout_seconds)


class BackgroundWorkers:
    """The watcher's event source and the notifier, each in its own daemon thread so a slow webhook never
    delays the watcher. `settings.event_source` picks the source: the tracker-store poller or the broker."""

    PRUNE_EVERY_SECONDS = 3600.0
    RECONCILE_EVERY_SECONDS = reconcile.EVERY_SECONDS

    def __init__(self, settings: HandoffSettings, clock: Clock, rasa: ConversationControl) -> None:
        self.settings = settings
        self.clock = clock
        self.watcher = Watcher(settings, clock, rasa)
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []
        self._consumer: ConsumerThread | None = None
        self._pruned_at = 0.0

    def _notifier_step(self) -> object:
        if time.monotonic() - self._pruned_at >= self.PRUNE_EVERY_SECONDS:
            self._pruned_at = time.monotonic()
            prune_handled_events(self.settings.database_url, self.clock)
        return run_escalations_and_outbox(self.settings, self.clock)

    def _loop(self, name: str, interval: float, step: Callable[[], object]) -> None:
        while not self._stop.is_set():
            try:
                step()
            except Exception:  # the database or Rasa may be restarting; try again next round
                log.exception("handoff %s pass failed", name)
            self._stop.wait(interval)

    def start(self) -> None:
        loops: Dict[str, tuple[float, Callable[[], object]]] = {
            "notifier": (self.settings.outbox_poll_seconds, self._notifier_step),
            # Risk events whose broker event was lost get their ticket here; the first pass runs at start-up.
            "reconciler": (
                self.RECONCILE_EVERY_SECONDS, lambda: reconcile.reconcile_risk_events(self.settings, self.clock)
            ),
        }
        if self.settings.event_source == "broker":
            from bot.handoff.broker import BrokerConsumer, ConsumerThread

            self._consumer = ConsumerThread(BrokerConsumer(self.settings, self.watcher))
            self._consumer.start()
        else:
            loops["watcher"] = (self.settings.watcher_poll_seconds, TrackerStorePoller(self.watcher).poll_once)
        log.info("handoff: watching new messages through the %s", "event broker" if self._consumer else "tracker store")
        for name, (interval, step) in loops.items():
            thread = threading.Thread(
                target=self._loop, args=(name, interval, step), name=f"handoff-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        if self._consumer is not None:
            self._consumer.stop()
        for thread in self._threads:
            thread.join(timeout=5)
