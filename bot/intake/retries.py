"""Confirming the same booking twice is safe: the second "yes" finds the first one's booking.

A confirmation whose custom action timed out in Rasa may still have been stored by the action server
(the answer came back too late). The visitor is asked to try again (bot/ops/action_failures.py); their
second "yes" then meets their own booking on that time. Without this check they would be told the time
"was just taken" and offered others, with a booking they never heard about left behind.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from bot.db import database_transaction
from bot.intake.models import Booking
from bot.intake.store import BookedCall


def own_booking(conversation_id: str | None, start: datetime, url: str | None = None) -> BookedCall | None:
    """This conversation's live booking of `start`, if it already made one (DatabaseUnavailable if down)."""
    if not conversation_id:
        return None
    with database_transaction(url) as session:
        booking = session.execute(
            select(Booking).where(
                Booking.conversation_id == conversation_id,
                Booking.starts_at == start,
                Booking.status == "booked",
                Booking.slot_id.is_not(None),
            )
        ).scalars().first()
        return BookedCall(booking.id, booking.code, start) if booking else None
