"""The booking form through the real validation action, with real trackers and a real database."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from actions.intake import (
    ActionAskIntakeConfirmed,
    ActionAskIntakeTime,
    ActionExplainIntakeQuestion,
    ActionIntakeFinish,
    ActionIntakeStop,
)
from bot.db import session_scope
from bot.intake import flow
from bot.intake.codes import CODE_ALPHABET
from bot.intake.models import Booking, OutboxMessage
from tests.intake.conftest import DOMAIN, MONDAY_8, responses, run, slot_events, tracker
from tests.intake.form_driver import ADULT_ANSWERS, FormSession


def test_happy_path_stores_the_booking_and_a_staff_notice(database_url: str) -> None:
    form = FormSession()
    form.fill(ADULT_ANSWERS)
    assert form.slots["intake_outcome"] == "booked" and form.requested is None
    code = form.slots["intake_booking_code"]
    assert len(code) == 6 and set(code) <= set(CODE_ALPHABET)
    with session_scope(database_url) as session:
        booking = session.execute(select(Booking)).scalar_one()
        assert (booking.code, booking.starts_at, booking.first_name, booking.last_name) == (
            code,
            MONDAY_8,
            "Maria",
            "Lopez",
        )
        assert (booking.contact.phone, booking.contact.email) == ("+12125550123", "maria@example.com")
        assert (booking.contact.preferred_method, booking.contact.ok_to_leave_message) == ("text", False)
        assert (booking.state, booking.insurance, booking.insurance_accepted) == (
            "New York",
            "Optum / UnitedHealthcare",
            True,
        )
        notice = session.execute(select(OutboxMessage)).scalar_one()
        assert notice.payload == {
            "event": "intake_call_booked",
            "booking_id": booking.id,
            "code": code,
            "starts_at": MONDAY_8.isoformat(),
            "minutes": 15,
        }
    events, messages = run(ActionIntakeFinish(), tracker(form.slots))
    assert responses(messages) == ["utter_intake_booked", "utter_intake_next_steps"]
    assert messages[0]["intake_booking_code"] == code
    assert all(value is None for value in slot_events(events).values())  # ready for another booking


def test_the_summary_lists_guardian_and_preferences_only_when_they_apply(database_url: str) -> None:
    form = FormSession()
    answers = {
        **ADULT_ANSWERS,
        "intake_age": "16",
        "intake_guardian_name": "Ana Lopez",
        "intake_guardian_contact": "ana@example.com",
        "intake_wants_preferences": "yes",
        "intake_pref_format": "online",
        "intake_pref_gender": "a woman",
        "intake_pref_language": "Spanish",
        "intake_pref_affirming": "yes",
        "intake_pref_approaches": "DBT",
    }
    form.fill(answers, stop_before="intake_confirmed")
    assert form.slots["intake_guardian_contact"] == "ana@example.com"
    _, messages = run(ActionAskIntakeConfirmed(), tracker(form.slots))
    assert responses(messages) == [
        "utter_intake_summary",
        "utter_intake_summary_guardian",
        "utter_intake_summary_preferences",
        "utter_ask_intake_confirmed",
    ]
    form.answer("yes")
    with session_scope(database_url) as session:
        booking = session.execute(select(Booking)).scalar_one()
        assert booking.guardian_name == "Ana Lopez" and booking.age == 16
        assert booking.preferences == {
            "format": "online",
            "gender": "woman",
            "language": "Spanish",
            "affirming": "yes",
            "approaches": "DBT",
        }


def test_a_parent_booking_for_a_child_is_the_guardian() -> None:
    form = FormSession()
    form.answer("for my daughter")
    form.answer("14")
    assert form.requested == "intake_guardian_name"
    form.answer("Ana Lopez")
    assert form.requested == "intake_name"  # the parent's own contact details follow, no second contact question


def test_a_teen_booking_for_themselves_gives_a_guardian_contact() -> None:
    form = FormSession()
    form.answer("me")
    form.answer("I'm 16")
    form.answer("Ana Lopez")
    assert form.requested == "intake_guardian_contact"
    _, messages = form.answer("12345")
    assert responses(messages) == ["utter_intake_invalid_phone"]
    assert form.requested == "intake_guardian_contact"


def test_bad_answers_get_specific_reprompts_and_after_three_an_offer_to_call() -> None:
    form = FormSession()
    form.fill(ADULT_ANSWERS, stop_before="intake_contact")
    assert responses(form.answer("maria@")[1]) == ["utter_intake_invalid_email"]
    assert responses(form.answer("555 01")[1]) == ["utter_intake_invalid_phone"]
    assert responses(form.answer("whenever")[1]) == ["utter_intake_invalid_nothing", "utter_intake_offer_call_instead"]
    assert form.requested == "intake_contact"
    form.answer("212 555 0123")
    assert form.requested == "intake_contact_method" and form.slots["intake_failures"] == 0


def test_only_an_email_skips_the_method_question() -> None:
    form = FormSession()
    form.fill(ADULT_ANSWERS, stop_before="intake_contact")
    form.answer("maria@example.com")
    assert form.slots["intake_contact_method"] == "email"
    assert form.requested == "intake_leave_message"


def test_outside_the_states_served_ends_kindly_without_storing(database_url: str) -> None:
    form = FormSession()
    form.fill(ADULT_ANSWERS, stop_before="intake_state")
    _, messages = form.answer("Texas")
    assert responses(messages) == ["utter_intake_state_not_served"]
    assert form.requested is None and form.slots["intake_outcome"] == "out_of_area"
    _events, messages = run(ActionIntakeFinish(), tracker(form.slots))
    assert responses(messages) == []
    with session_scope(database_url) as session:
        assert session.execute(select(Booking)).first() is None


def test_unknown_insurer_is_recorded_not_refused() -> None:
    form = FormSession()
    form.fill(ADULT_ANSWERS, stop_before="intake_insurance")
    _, messages = form.answer("Medicaid")
    assert responses(messages) == ["utter_intake_insurance_unknown"]
    assert (form.slots["intake_insurance"], form.slots["intake_insurance_accepted"]) == ("Medicaid", False)
    assert form.requested == "intake_care_type"


def test_time_buttons_offer_the_next_three_free_calls(database_url: str) -> None:
    _events, messages = run(ActionAskIntakeTime(), tracker({"requested_slot": "intake_time"}))
    assert responses(messages) == ["utter_ask_intake_time"]
    assert [button["payload"] for button in messages[0]["buttons"]] == [
        "2026-11-23 08:00",
        "2026-11-23 08:15",
        "2026-11-23 08:30",
    ]
    assert messages[0]["buttons"][0]["title"] == "Mon, Nov 23 at 8:00 AM"


def test_free_text_times(database_url: str) -> None:
    form = FormSession()
    form.fill(ADULT_ANSWERS, stop_before="intake_time")
    changes, messages = form.answer("tomorrow afternoon")
    assert responses(messages) == ["utter_intake_time_pick_in_window"]
    assert [b["payload"] for b in messages[0]["buttons"]] == [
        "2026-11-23 12:00",
        "2026-11-23 12:15",
        "2026-11-23 12:30",
    ]
    assert changes["intake_asked"] is True and changes["intake_failures"] == 0  # a day is an answer, not a mistake
    for text, response in [
        ("yesterday at 10", "utter_intake_time_past"),
        ("Saturday at 10", "utter_intake_time_outside_hours"),
        ("tomorrow at 7pm", "utter_intake_time_outside_hours"),
        ("tomorrow at 10:05", "utter_intake_time_not_on_grid"),
        ("purple elephant", "utter_intake_time_not_understood"),
    ]:
        assert responses(form.answer(text)[1])[0] == response, text
    form.answer("next Tuesday at 10")
    assert form.slots["intake_time_display"] == "Tue, Nov 24 at 10:00 AM"
    assert form.requested == "intake_consent"


def test_a_time_already_taken_is_refused_with_others(database_url: str) -> None:
    first = FormSession()
    first.fill(ADULT_ANSWERS)
    second = FormSession()
    second.fill(ADULT_ANSWERS, stop_before="intake_time")
    _, messages = second.answer("2026-11-23 08:00")
    assert responses(messages) == ["utter_intake_time_taken"]
    assert "2026-11-23 08:00" not in [b["payload"] for b in messages[0]["buttons"]]


def test_why_do_you_need_that_has_an_answer_for_every_question() -> None:
    for slot in flow.FORM_SLOTS + flow.MANAGE_SLOTS:
        _, messages = run(ActionExplainIntakeQuestion(), tracker({"requested_slot": slot}))
        (response,) = responses(messages)
        assert response in DOMAIN["responses"] and response != "utter_intake_why_general", slot


def test_corrections_reask_only_that_field(database_url: str) -> None:
    form = FormSession()
    form.fill(ADULT_ANSWERS, stop_before="intake_confirmed")
    form.answer("change my phone number")
    assert form.requested == "intake_contact"
    assert form.slots["intake_name"] == "Maria Lopez"  # everything else is kept
    form.answer("917 555 0188")
    assert form.requested == "intake_contact_method"
    form.answer("call")
    assert form.requested == "intake_confirmed"
    _, messages = form.answer("no")
    assert responses(messages) == ["utter_intake_which_field"]
    assert not messages[0]["buttons"]  # the field buttons are part of the response in domain.yml
    form.answer("change the time")
    assert form.requested == "intake_time"
    form.answer("2026-11-23 09:00")
    form.answer("yes")
    with session_scope(database_url) as session:
        booking = session.execute(select(Booking)).scalar_one()
        assert (booking.contact.phone, booking.contact.preferred_method) == ("+19175550188", "call")
        assert booking.starts_at == MONDAY_8 + timedelta(hours=1)


def test_stopping_halfway_stores_nothing_and_forgets_the_answers(database_url: str) -> None:
    form = FormSession()
    form.fill(ADULT_ANSWERS, stop_before="intake_confirmed")
    events, messages = run(ActionIntakeStop(), tracker(form.slots))
    assert responses(messages) == ["utter_intake_stopped"]
    cleared = slot_events(events)
    assert all(cleared.get(slot, "kept") is None for slot in flow.ALL_SLOTS)
    with session_scope(database_url) as session:
        assert session.execute(select(Booking)).first() is None
        assert session.execute(select(OutboxMessage)).first() is None


def test_no_consent_books_nothing(database_url: str) -> None:
    form = FormSession()
    form.fill(ADULT_ANSWERS, stop_before="intake_consent")
    _, messages = form.answer("no")
    assert responses(messages) == ["utter_intake_no_consent"]
    assert form.requested is None and form.slots["intake_outcome"] == "no_consent"
