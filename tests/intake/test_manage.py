"""Rescheduling and cancelling by confirmation code plus the contact given when booking."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from actions.intake import (
    ActionIntakeCancelBooking,
    ActionIntakeRescheduled,
    ValidateIntakeCancelForm,
    ValidateIntakeRescheduleForm,
)
from bot.db import session_scope
from bot.intake.models import Booking, OutboxMessage
from tests.intake.conftest import MONDAY_8, responses, run, slot_events, tracker
from tests.intake.form_driver import ADULT_ANSWERS, FormSession


def booked_code() -> str:
    form = FormSession()
    form.fill(ADULT_ANSWERS)
    return str(form.slots["intake_booking_code"])


def lookup(validator, code: str, contact: str, form: str) -> dict:  # type: ignore[no-untyped-def]
    slots = {"requested_slot": "intake_lookup_code"}
    events, _ = run(validator, tracker(slots, code, {"intake_lookup_code": code}, form=form))
    slots.update(slot_events(events))
    events, messages = run(validator, tracker(slots, contact, {"intake_lookup_contact": contact}, form=form))
    slots.update(slot_events(events))
    slots["_messages"] = messages
    return slots


def test_cancel_with_code_and_phone_frees_the_time(database_url: str) -> None:
    code = booked_code()
    slots = lookup(ValidateIntakeCancelForm(), code.lower(), "212-555-0123", "intake_cancel_form")
    assert slots["intake_lookup_contact"] == "212-555-0123"
    _events, messages = run(ActionIntakeCancelBooking(), tracker(slots, form=None))
    assert responses(messages) == ["utter_intake_cancelled"]
    assert messages[0]["intake_time_display"] == "Mon, Nov 23 at 8:00 AM"
    with session_scope(database_url) as session:
        booking = session.execute(select(Booking)).scalar_one()
        assert (booking.status, booking.slot_id) == ("cancelled", None)
        kinds = session.execute(select(OutboxMessage.kind).order_by(OutboxMessage.id)).scalars().all()
        assert kinds == ["intake_call_booked", "intake_call_cancelled"]
    FormSession().fill(ADULT_ANSWERS)  # someone else can now book 8:00


def test_wrong_contact_or_code_finds_nothing(database_url: str) -> None:
    code = booked_code()
    for code_text, contact in [(code, "917 555 0188"), (code, "other@example.com"), ("HK73PQ", "212 555 0123")]:
        slots = lookup(ValidateIntakeCancelForm(), code_text, contact, "intake_cancel_form")
        assert responses(slots["_messages"]) == ["utter_intake_booking_not_found"]
        assert slots["intake_lookup_code"] is None and slots["intake_lookup_contact"] is None
    slots = lookup(ValidateIntakeCancelForm(), code, "MARIA@example.com", "intake_cancel_form")
    assert slots["intake_lookup_contact"] == "MARIA@example.com"


def test_reschedule_moves_the_call_and_the_old_time_is_free_again(database_url: str) -> None:
    code = booked_code()
    validator = ValidateIntakeRescheduleForm()
    slots = lookup(validator, code, "maria@example.com", "intake_reschedule_form")
    assert responses(slots.pop("_messages")) == ["utter_intake_booking_found"]
    slots["requested_slot"] = "intake_new_time"
    events, messages = run(
        validator,
        tracker(slots, "next Tuesday at 10", {"intake_new_time": "next Tuesday at 10"}, form="intake_reschedule_form"),
    )
    slots.update(slot_events(events))
    assert slots["intake_time_display"] == "Tue, Nov 24 at 10:00 AM"
    _, messages = run(ActionIntakeRescheduled(), tracker(slots, form=None))
    assert responses(messages) == ["utter_intake_rescheduled"]
    with session_scope(database_url) as session:
        booking = session.execute(select(Booking)).scalar_one()
        assert booking.starts_at == MONDAY_8 + timedelta(days=1, hours=2) and booking.code == code
    FormSession().fill(ADULT_ANSWERS)  # Monday 8:00 was released


def test_reschedule_to_a_taken_time_offers_others(database_url: str) -> None:
    code = booked_code()
    other = FormSession()
    other.fill({**ADULT_ANSWERS, "intake_time": "2026-11-23 09:00"})
    validator = ValidateIntakeRescheduleForm()
    slots = lookup(validator, code, "2125550123", "intake_reschedule_form")
    slots["requested_slot"] = "intake_new_time"
    events, messages = run(
        validator,
        tracker(slots, "2026-11-23 09:00", {"intake_new_time": "2026-11-23 09:00"}, form="intake_reschedule_form"),
    )
    assert responses(messages) == ["utter_intake_time_taken"]
    assert slot_events(events)["intake_new_time"] is None
