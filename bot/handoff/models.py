"""Tables of the staff side: accounts, sessions, login attempts, tickets, audit log, notification outbox,
watcher cursor, handled events."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import relationship

from bot.db import Base

ROLE_INTAKE = "intake"
ROLE_ADMIN = "admin"
ROLES = (ROLE_INTAKE, ROLE_ADMIN)

STATUS_NEW = "new"
STATUS_CLAIMED = "claimed"
STATUS_CLOSED = "closed"
OPEN_STATUSES = (STATUS_NEW, STATUS_CLAIMED)

REASON_RISK = "risk"
REASON_ASKED_FOR_PERSON = "asked_for_person"
REASON_COULD_NOT_HELP = "could_not_help"


class StaffAccount(Base):
    __tablename__ = "staff_accounts"

    id = Column(Integer, primary_key=True)
    username = Column(String(80), nullable=False, unique=True)
    first_name = Column(String(80), nullable=False)
    password_hash = Column(String(255), nullable=False)
    role = Column(String(16), nullable=False, default=ROLE_INTAKE)
    active = Column(Boolean, nullable=False, default=True)
    created_at = Column(DateTime(timezone=True), nullable=False)
    last_login_at = Column(DateTime(timezone=True), nullable=True)

    @property
    def is_admin(self) -> bool:
        return bool(self.role == ROLE_ADMIN)


class StaffSession(Base):
    __tablename__ = "staff_sessions"

    id = Column(Integer, primary_key=True)
    token_hash = Column(String(64), nullable=False, unique=True)
    staff_id = Column(Integer, ForeignKey("staff_accounts.id", ondelete="CASCADE"), nullable=False, index=True)
    csrf_token = Column(String(64), nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False)
    last_seen_at = Column(DateTime(timezone=True), nullable=False)

    staff = relationship(StaffAccount, lazy="joined")


class LoginAttempt(Base):
    """One login attempt, counted against a client address or an account name until it expires.

    `key` is a SHA-256 of the scope and the address or name: the table only counts, it never needs to
    show which names were tried (the audit log records that).
    """

    __tablename__ = "staff_login_attempts"
    __table_args__ = (Index("ix_staff_login_attempts_key_at", "key", "at"),)

    id = Column(Integer, primary_key=True)
    key = Column(String(64), nullable=False)
    at = Column(DateTime(timezone=True), nullable=False, index=True)


class Ticket(Base):
    __tablename__ = "handoff_tickets"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    reason = Column(String(32), nullable=False)
    risk_level = Column(String(16), nullable=True)
    # 0 = imminent, 1 = acute, 2 = concern, 3 = everything else; lower is more urgent.
    priority = Column(Integer, nullable=False, index=True)
    status = Column(String(16), nullable=False, default=STATUS_NEW, index=True)
    created_at = Column(DateTime(timezone=True), nullable=False)
    updated_at = Column(DateTime(timezone=True), nullable=False)
    claimed_by_id = Column(Integer, ForeignKey("staff_accounts.id"), nullable=True)
    claimed_at = Column(DateTime(timezone=True), nullable=True)
    closed_at = Column(DateTime(timezone=True), nullable=True)
    outcome_note = Column(Text, nullable=True)
    escalated_at = Column(DateTime(timezone=True), nullable=True)
    last_visitor_message_at = Column(DateTime(timezone=True), nullable=True)
    visitor_acknowledged_at = Column(DateTime(timezone=True), nullable=True)
    handed_back_at = Column(DateTime(timezone=True), nullable=True)

    claimed_by = relationship(StaffAccount, lazy="joined")


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id = Column(Integer, primary_key=True)
    at = Column(DateTime(timezone=True), nullable=False, index=True)
    staff_id = Column(Integer, ForeignKey("staff_accounts.id"), nullable=True)
    staff_username = Column(String(80), nullable=False)
    action = Column(String(48), nullable=False)
    ticket_id = Column(Integer, nullable=True, index=True)
    detail = Column(JSON, nullable=False, default=dict)


class OutboxMessage(Base):
    __tablename__ = "notification_outbox"

    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("handoff_tickets.id"), nullable=False, index=True)
    kind = Column(String(16), nullable=False)
    payload = Column(JSON, nullable=False)
    status = Column(String(16), nullable=False, default="pending", index=True)
    attempts = Column(Integer, nullable=False, default=0)
    created_at = Column(DateTime(timezone=True), nullable=False)
    next_attempt_at = Column(DateTime(timezone=True), nullable=False)
    delivered_at = Column(DateTime(timezone=True), nullable=True)
    last_error = Column(String(500), nullable=True)


class WatcherCursor(Base):
    __tablename__ = "handoff_watcher_cursor"

    name = Column(String(64), primary_key=True)
    last_event_id = Column(Integer, nullable=False)


class HandledEvent(Base):
    """A tracker event the staff side has acted on; a second delivery of it (broker redelivery) is skipped."""

    __tablename__ = "handoff_handled_events"

    event_id = Column(Integer, primary_key=True, autoincrement=False)  # id in Rasa's tracker store
    conversation_id = Column(String(255), primary_key=True)
    source = Column(String(16), nullable=False)  # "tracker" (poller) or "broker" (RabbitMQ consumer)
    publisher = Column(String(64), nullable=True)  # the Rasa process that handled the turn (broker only)
    handled_at = Column(DateTime(timezone=True), nullable=False, index=True)
