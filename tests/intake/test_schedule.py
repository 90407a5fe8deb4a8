from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.intake import flow, schedule
from bot.settings import practice
from tests.intake.conftest import MONDAY_8, NOW


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=practice().zone).astimezone(timezone.utc)


def test_call_grid_follows_practice_hours() -> None:
    facts = practice()
    monday = schedule.call_starts_on(facts, MONDAY_8.astimezone(facts.zone).date())
    assert monday[0] == local("2026-11-23 08:00")
    assert monday[-1] == local("2026-11-23 17:45")  # last call ends when the office closes at 18:00
    assert len(monday) == 40
    assert schedule.call_starts_on(facts, datetime(2026, 11, 28).date()) == []  # Saturday


def test_next_starts_are_never_in_the_past_or_too_soon() -> None:
    facts = practice()
    monday_noon = local("2026-11-23 12:05")
    starts = list(schedule.upcoming_call_starts(facts, monday_noon))[:3]
    assert starts[0] == local("2026-11-23 13:15")  # 12:05 + one hour lead, on the 15-minute grid
    assert all(start > monday_noon for start in starts)


@pytest.mark.parametrize(
    ("text", "exact"),
    [
        ("next Tuesday at 10", "2026-11-24 10:00"),
        ("tuesday 10:30", "2026-11-24 10:30"),
        ("tomorrow at 3", "2026-11-23 15:00"),
        ("friday at 4:30", "2026-11-27 16:30"),
        ("2026-11-23 08:15", "2026-11-23 08:15"),
    ],
)
def test_exact_times_in_the_practice_time_zone(text: str, exact: str) -> None:
    request = schedule.parse_time_request(practice(), text, NOW)
    assert request is not None and request.exact == local(exact)


def test_part_of_day_is_a_window() -> None:
    request = schedule.parse_time_request(practice(), "tomorrow afternoon", NOW)
    assert request is not None and request.exact is None
    assert (request.window_start, request.window_end) == (local("2026-11-23 12:00"), local("2026-11-23 17:00"))


def test_nonsense_is_not_a_time() -> None:
    assert schedule.parse_time_request(practice(), "purple elephant", NOW) is None


def test_bookable_only_on_grid_in_hours_and_ahead() -> None:
    facts = practice()
    assert schedule.is_bookable_start(facts, MONDAY_8, NOW)
    assert not schedule.is_bookable_start(facts, MONDAY_8 + timedelta(minutes=5), NOW)
    assert not schedule.is_bookable_start(facts, local("2026-11-23 19:00"), NOW)
    assert not schedule.is_bookable_start(facts, MONDAY_8, MONDAY_8 - timedelta(minutes=10))


def test_required_slots_for_adults_minors_and_preferences() -> None:
    adult = flow.required_slots({"intake_age": 30, "intake_care_for": "me"})
    assert "intake_guardian_name" not in adult and "intake_pref_format" not in adult
    teen = flow.required_slots({"intake_age": 16, "intake_care_for": "me"})
    assert teen.index("intake_guardian_name") < teen.index("intake_guardian_contact") < teen.index("intake_name")
    parent = flow.required_slots({"intake_age": 14, "intake_care_for": "my child"})
    assert "intake_guardian_name" in parent and "intake_guardian_contact" not in parent
    with_prefs = flow.required_slots({"intake_age": 30, "intake_wants_preferences": "yes"})
    assert set(flow.PREFERENCE_SLOTS) <= set(with_prefs)
    assert flow.required_slots({"intake_outcome": "out_of_area"}) == []


@pytest.mark.parametrize(
    ("text", "first_slot"),
    [
        ("change my phone number", "intake_contact"),
        ("the time is wrong", "intake_time"),
        ("my name is misspelled", "intake_name"),
        ("wrong insurance", "intake_insurance"),
        ("don't leave voicemails", "intake_leave_message"),
        ("the state", "intake_state"),
    ],
)
def test_corrections_name_the_slot_to_ask_again(text: str, first_slot: str) -> None:
    assert flow.correction_targets(text)[0] == first_slot


def test_every_which_field_button_reasks_a_different_question() -> None:
    from tests.intake.conftest import DOMAIN

    (variation,) = DOMAIN["responses"]["utter_intake_which_field"]
    firsts = [flow.correction_targets(button["payload"])[0] for button in variation["buttons"]]
    assert len(set(firsts)) == len(firsts)
    assert set(firsts) <= set(flow.FORM_SLOTS)
