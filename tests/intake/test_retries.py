"""A "yes" sent again after a timed-out confirmation finds the booking the first one stored."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from sqlalchemy import select

from actions.intake import ValidateIntakeForm
from bot.db import session_scope
from bot.intake.models import Booking, OutboxMessage
from bot.intake.retries import own_booking
from tests.intake.conftest import MONDAY_8, responses, run, slot_events, tracker
from tests.intake.form_driver import ADULT_ANSWERS, FormSession


def ready_to_confirm() -> Dict[str, Any]:
    form = FormSession()
    form.fill(ADULT_ANSWERS, stop_before="intake_confirmed")
    return dict(form.slots)


def confirm(slots: Dict[str, Any], sender: str) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    return run(ValidateIntakeForm(), tracker(slots, "yes", {"intake_confirmed": "yes"}, sender=sender))


def test_confirming_twice_in_one_conversation_keeps_one_booking_and_its_code(database_url: str) -> None:
    slots = ready_to_confirm()
    first_events, _ = confirm(slots, "retrying-visitor")
    second_events, second_messages = confirm(slots, "retrying-visitor")
    first, second = slot_events(first_events), slot_events(second_events)
    assert first["intake_outcome"] == second["intake_outcome"] == "booked"
    assert second["intake_booking_code"] == first["intake_booking_code"]
    assert "utter_intake_time_just_taken" not in responses(second_messages)
    with session_scope(database_url) as session:
        assert len(session.execute(select(Booking)).all()) == 1
        assert len(session.execute(select(OutboxMessage)).all()) == 1  # staff hear of it once


def test_another_conversation_still_hears_the_time_was_taken(database_url: str) -> None:
    slots = ready_to_confirm()
    confirm(slots, "first-visitor")
    events, messages = confirm(slots, "second-visitor")
    assert responses(messages) == ["utter_intake_time_just_taken"]
    assert slot_events(events)["intake_time"] is None


def test_a_cancelled_booking_is_not_found_again(database_url: str) -> None:
    confirm(ready_to_confirm(), "cancelling-visitor")
    assert own_booking("cancelling-visitor", MONDAY_8, database_url) is not None
    with session_scope(database_url) as session:
        booking = session.execute(select(Booking)).scalars().one()
        booking.status, booking.slot_id = "cancelled", None
    assert own_booking("cancelling-visitor", MONDAY_8, database_url) is None
    assert own_booking(None, MONDAY_8, database_url) is None
