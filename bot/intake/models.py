"""Tables for intake calls: the slots (one row per bookable call start), bookings, contact preferences,
and the outbox of staff notices (written in the same transaction as the booking)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, Boolean, Column, DateTime, ForeignKey, Integer, String, Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import relationship

from bot.db import Base


def utc_now() -> datetime:
    return datetime.now(tz=timezone.utc)


class UTCDateTime(TypeDecorator):
    """Always UTC and always timezone-aware in Python, on SQLite (no time zones) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass a timezone-aware one")
        utc = value.astimezone(timezone.utc)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class IntakeSlot(Base):
    """A possible intake call start, derived from the practice hours (created when first offered)."""

    __tablename__ = "intake_slots"

    id = Column(Integer, primary_key=True)
    starts_at = Column(UTCDateTime, nullable=False, unique=True)
    minutes = Column(Integer, nullable=False)


class Booking(Base):
    """A booked intake call. `slot_id` is UNIQUE: the database itself refuses a second booking of a slot.
    Cancelling clears slot_id (the time stays in `starts_at`), which frees the slot for others."""

    __tablename__ = "intake_bookings"

    id = Column(Integer, primary_key=True)
    code = Column(String(12), nullable=False, unique=True)
    slot_id = Column(Integer, ForeignKey("intake_slots.id"), nullable=True, unique=True)
    starts_at = Column(UTCDateTime, nullable=False)
    status = Column(String(16), nullable=False, default="booked")
    care_for = Column(String(32), nullable=False)
    age = Column(Integer, nullable=False)
    first_name = Column(String(80), nullable=False)
    last_name = Column(String(80), nullable=True)
    guardian_name = Column(String(160), nullable=True)
    guardian_contact = Column(String(254), nullable=True)
    state = Column(String(64), nullable=False)
    insurance = Column(String(80), nullable=False)
    insurance_accepted = Column(Boolean, nullable=False)
    care_type = Column(String(40), nullable=False)
    preferences = Column(JSON, nullable=False, default=dict)
    consent_at = Column(UTCDateTime, nullable=False)
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)
    updated_at = Column(UTCDateTime, nullable=False, default=utc_now, onupdate=utc_now)

    slot = relationship(IntakeSlot)
    contact = relationship("ContactPreference", uselist=False, back_populates="booking")


class ContactPreference(Base):
    """How and whether to reach the person: many must keep therapy private from people at home."""

    __tablename__ = "intake_contact_preferences"

    id = Column(Integer, primary_key=True)
    booking_id = Column(Integer, ForeignKey("intake_bookings.id", ondelete="CASCADE"), nullable=False, unique=True)
    phone = Column(String(20), nullable=True)
    email = Column(String(254), nullable=True)
    preferred_method = Column(String(8), nullable=False)
    ok_to_leave_message = Column(Boolean, nullable=False)

    booking = relationship(Booking, back_populates="contact")


class OutboxMessage(Base):
    """A staff notice waiting for (or done with) webhook delivery. Carries no personal data."""

    __tablename__ = "intake_outbox"

    id = Column(Integer, primary_key=True)
    kind = Column(String(32), nullable=False)
    payload = Column(JSON, nullable=False)
    created_at = Column(UTCDateTime, nullable=False, default=utc_now)
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(UTCDateTime, nullable=False, default=utc_now, index=True)
    delivered_at = Column(UTCDateTime, nullable=True, index=True)
    last_error = Column(Text, nullable=True)

    def __repr__(self) -> str:  # never the payload: keep logs free of anything but ids
        return f"OutboxMessage(id={self.id}, kind={self.kind}, attempts={self.attempts})"
