"""Storing intake calls. One transaction per change; the database's unique constraints decide races.

Every database failure that is not a conflict becomes `DatabaseUnavailable`, so the actions can give
the practice's phone number instead of an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Dict, List

from sqlalchemy import and_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.db import DatabaseUnavailable, database_transaction
from bot.intake.answers import parse_email, parse_phone
from bot.intake.codes import new_code, normalise_code
from bot.intake.models import Booking, ContactPreference, IntakeSlot, OutboxMessage
from bot.intake.schedule import first_free, is_bookable_start, upcoming_call_starts
from bot.settings import Practice

log = logging.getLogger(__name__)
CODE_ATTEMPTS = 5


class SlotTaken(Exception):
    """Someone else booked this time first."""


class SlotNotBookable(Exception):
    """The time is in the past, too soon, or outside the practice's hours."""


class BookingNotFound(Exception):
    """No live booking with this code and contact."""


@dataclass(frozen=True)
class IntakeDetails:
    care_for: str
    age: int
    first_name: str
    state: str
    insurance: str
    insurance_accepted: bool
    care_type: str
    preferred_method: str
    ok_to_leave_message: bool
    phone: str | None = None
    email: str | None = None
    last_name: str | None = None
    guardian_name: str | None = None
    guardian_contact: str | None = None
    preferences: Dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BookedCall:
    booking_id: int
    code: str
    starts_at: datetime


def _is_slot_conflict(error: IntegrityError) -> bool:
    message = str(error.orig)
    return "uq_intake_booking_slot" in message or "intake_bookings.slot_id" in message


def taken_starts(session: Session, start: datetime, end: datetime) -> set[datetime]:
    rows = session.execute(
        select(IntakeSlot.starts_at)
        .join(Booking, Booking.slot_id == IntakeSlot.id)
        .where(and_(IntakeSlot.starts_at >= start, IntakeSlot.starts_at <= end))
    )
    return {row[0] for row in rows}


def free_starts(
    practice: Practice,
    now: datetime,
    count: int = 3,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    url: str | None = None,
) -> List[datetime]:
    """The next `count` free call starts (optionally within a window), soonest first."""
    candidates = [
        start
        for start in upcoming_call_starts(practice, now)
        if (not_before is None or start >= not_before) and (not_after is None or start < not_after)
    ]
    if not candidates:
        return []
    with database_transaction(url) as session:
        taken = taken_starts(session, candidates[0], candidates[-1])
    return first_free(candidates, taken, count)


def _slot_id(session: Session, start: datetime, minutes: int) -> int:
    """The slot row for a start, created if this is the first time anyone picks it (race-safe)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(IntakeSlot.__table__).values(starts_at=start, minutes=minutes)
    session.execute(statement.on_conflict_do_nothing(index_elements=["starts_at"]))
    return int(session.execute(select(IntakeSlot.id).where(IntakeSlot.starts_at == start)).scalar_one())


def _notice(kind: str, booking: Booking, minutes: int) -> OutboxMessage:
    # What staff need to find the booking, and nothing more: no names, numbers or answers.
    return OutboxMessage(
        kind=kind,
        payload={
            "event": kind,
            "booking_id": booking.id,
            "code": booking.code,
            "starts_at": booking.starts_at.astimezone(timezone.utc).isoformat(),
            "minutes": minutes,
        },
    )


def book(
    practice: Practice,
    details: IntakeDetails,
    start: datetime,
    now: datetime,
    url: str | None = None,
    conversation_id: str | None = None,
) -> BookedCall:
    if not is_bookable_start(practice, start, now):
        raise SlotNotBookable(start.isoformat())
    for _ in range(CODE_ATTEMPTS):
        try:
            with database_transaction(url) as session:
                slot_id = _slot_id(session, start, practice.intake_call_minutes)
                booking = Booking(
                    code=new_code(),
                    conversation_id=conversation_id,
                    slot_id=slot_id,
                    starts_at=start,
                    status="booked",
                    care_for=details.care_for,
                    age=details.age,
                    first_name=details.first_name,
                    last_name=details.last_name,
                    guardian_name=details.guardian_name,
                    guardian_contact=details.guardian_contact,
                    state=details.state,
                    insurance=details.insurance,
                    insurance_accepted=details.insurance_accepted,
                    care_type=details.care_type,
                    preferences=dict(details.preferences),
                    consent_at=now,
                )
                booking.contact = ContactPreference(
                    phone=details.phone,
                    email=details.email,
                    preferred_method=details.preferred_method,
                    ok_to_leave_message=details.ok_to_leave_message,
                )
                session.add(booking)
                session.flush()  # the unique constraint on slot_id fires here
                # Same transaction: the staff notice exists if and only if the booking does.
                session.add(_notice("intake_call_booked", booking, practice.intake_call_minutes))
                result = BookedCall(booking.id, booking.code, start)
            log.info("intake call booked: booking_id=%s", result.booking_id)
            return result
        except IntegrityError as error:
            if _is_slot_conflict(error):
                raise SlotTaken(start.isoformat()) from None
            # A confirmation code collision: extremely rare, try another code.
            continue
    raise DatabaseUnavailable("could not allocate a confirmation code")


def _contact_matches(booking: Booking, contact_text: str) -> bool:
    phone = parse_phone(contact_text)
    email = parse_email(contact_text.strip()) if "@" in contact_text else None
    stored = booking.contact
    known = {stored.phone, (stored.email or "").lower(), booking.guardian_contact} if stored else set()
    return bool((phone and phone in known) or (email and email.lower() in known))


def _live_booking(session: Session, code_text: str, contact_text: str) -> Booking:
    code = normalise_code(code_text)
    if code is None:
        raise BookingNotFound
    booking = session.execute(
        select(Booking).where(Booking.code == code, Booking.status == "booked")
    ).scalar_one_or_none()
    if booking is None or not _contact_matches(booking, contact_text):
        raise BookingNotFound
    return booking


def find_booking(code_text: str, contact_text: str, url: str | None = None) -> BookedCall:
    with database_transaction(url) as session:
        booking = _live_booking(session, code_text, contact_text)
        return BookedCall(booking.id, booking.code, booking.starts_at)


def cancel(practice: Practice, code_text: str, contact_text: str, url: str | None = None) -> BookedCall:
    with database_transaction(url) as session:
        booking = _live_booking(session, code_text, contact_text)
        booking.status = "cancelled"
        booking.slot_id = None  # frees the time for someone else
        session.flush()
        session.add(_notice("intake_call_cancelled", booking, practice.intake_call_minutes))
        result = BookedCall(booking.id, booking.code, booking.starts_at)
    log.info("intake call cancelled: booking_id=%s", result.booking_id)
    return result


def reschedule(
    practice: Practice,
    code_text: str,
    contact_text: str,
    start: datetime,
    now: datetime,
    url: str | None = None,
) -> BookedCall:
    if not is_bookable_start(practice, start, now):
        raise SlotNotBookable(start.isoformat())
    try:
        with database_transaction(url) as session:
            booking = _live_booking(session, code_text, contact_text)
            booking.slot_id = _slot_id(session, start, practice.intake_call_minutes)
            booking.starts_at = start
            session.flush()
            session.add(_notice("intake_call_rescheduled", booking, practice.intake_call_minutes))
            result = BookedCall(booking.id, booking.code, start)
    except IntegrityError as error:
        if _is_slot_conflict(error):
            raise SlotTaken(start.isoformat()) from None
        raise
    log.info("intake call rescheduled: booking_id=%s", result.booking_id)
    return result
