"""What the staff console's ticket page shows under "Booking" for a conversation.

The console picks up `booking_summary` by its module name (bot.handoff.console.booking) and shows the
mapping as `key: value` rows. Keys are stable field names and values are data; the ticket template
turns both into staff-readable labels, so no wording lives here.

Several live bookings from one chat are rare but possible (someone books twice): the first keeps the
plain keys, later ones get a `.2`, `.3` suffix so each booking's fields stay together and in order.
"""

from __future__ import annotations

from typing import Dict, List

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.db import database_transaction
from bot.intake import schedule
from bot.intake.models import Booking
from bot.settings import Practice, practice

LIVE_STATUS = "booked"


def _fields(booking: Booking, practice_facts: Practice) -> Dict[str, str]:
    contact = booking.contact
    call_time = schedule.describe(practice_facts, booking.starts_at)
    return {
        "code": booking.code,
        "call_time": f"{call_time} ({practice_facts.timezone_label})",
        "care_for": booking.care_for,
        "contact_method": contact.preferred_method if contact else "",
        # Many clients keep therapy private from people at home: staff must see this before calling.
        "ok_to_leave_message": "yes" if contact and contact.ok_to_leave_message else "no",
    }


def live_bookings(conversation_id: str, url: str | None = None) -> List[Dict[str, str]]:
    """The not-cancelled bookings made in this conversation, soonest call first, as console fields."""
    facts = practice()
    with database_transaction(url) as session:
        bookings = (
            session.execute(
                select(Booking)
                .options(selectinload(Booking.contact))
                .where(Booking.conversation_id == conversation_id, Booking.status == LIVE_STATUS)
                .order_by(Booking.starts_at, Booking.id)
            )
            .scalars()
            .all()
        )
        return [_fields(booking, facts) for booking in bookings]


def booking_summary(conversation_id: str, url: str | None = None) -> Dict[str, str] | None:
    """The console's booking lookup: `{field: value}` for this conversation's live booking(s), or None."""
    summary: Dict[str, str] = {}
    for number, fields in enumerate(live_bookings(conversation_id, url), start=1):
        suffix = "" if number == 1 else f".{number}"
        summary.update({f"{key}{suffix}": value for key, value in fields.items()})
    return summary or None
