"""The booking a conversation made, as the staff console's ticket page shows it (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.db import session_scope
from bot.intake import store
from bot.intake.models import Booking
from bot.intake.staff_view import booking_summary
from bot.settings import practice
from tests.intake.conftest import MONDAY_8, NOW
from tests.intake.form_driver import ADULT_ANSWERS, FormSession

SENDER = "intake-test"  # the sender id of the trackers the form driver sends to the actions


def test_the_booking_form_records_the_conversation_and_staff_see_the_booking(database_url: str) -> None:
    form = FormSession()
    form.fill(ADULT_ANSWERS)
    code = str(form.slots["intake_booking_code"])
    with session_scope(database_url) as session:
        assert session.execute(select(Booking.conversation_id)).scalar_one() == SENDER

    assert booking_summary(SENDER) == {
        "code": code,
        "call_time": f"Mon, Nov 23 at 8:00 AM ({practice().timezone_label})",
        "care_for": "me",
        "contact_method": "text",
        "ok_to_leave_message": "no",
    }
    assert booking_summary("another-conversation") is None


def test_a_cancelled_booking_is_no_longer_shown(database_url: str) -> None:
    form = FormSession()
    form.fill(ADULT_ANSWERS)
    store.cancel(practice(), str(form.slots["intake_booking_code"]), "212-555-0123", url=database_url)
    assert booking_summary(SENDER, url=database_url) is None


def test_a_rescheduled_booking_keeps_its_conversation_and_shows_the_new_time(database_url: str) -> None:
    form = FormSession()
    form.fill(ADULT_ANSWERS)
    code = str(form.slots["intake_booking_code"])
    store.reschedule(practice(), code, "maria@example.com", MONDAY_8 + timedelta(minutes=30), NOW, url=database_url)
    summary = booking_summary(SENDER, url=database_url)
    assert summary is not None and summary["code"] == code
    assert summary["call_time"].startswith("Mon, Nov 23 at 8:30 AM")


def test_two_live_bookings_in_one_chat_are_both_shown_soonest_first(database_url: str) -> None:
    details = store.IntakeDetails(
        care_for="my child",
        age=15,
        first_name="Sam",
        state="NY",
        insurance="UHC",
        insurance_accepted=True,
        care_type="therapy only",
        preferred_method="call",
        ok_to_leave_message=True,
        phone="2125550199",
        guardian_name="Alex Doe",
        guardian_contact="2125550199",
    )
    later = store.book(practice(), details, MONDAY_8 + timedelta(minutes=15), NOW, database_url, "chat-2")
    sooner = store.book(practice(), details, MONDAY_8, NOW, database_url, "chat-2")
    summary = booking_summary("chat-2", url=database_url)
    assert summary is not None
    assert (summary["code"], summary["code.2"]) == (sooner.code, later.code)
    assert (summary["care_for"], summary["contact_method"], summary["ok_to_leave_message.2"]) == (
        "my child",
        "call",
        "yes",
    )
