"""Rasa glue for booking, rescheduling and cancelling intake calls. Logic lives in bot/intake/."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Dict, List, Tuple

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.db import DatabaseUnavailable
from bot.intake import answers, flow, retries, schedule, store
from bot.intake.codes import normalise_code
from bot.settings import practice

Validated = Dict[str, Any]
INVALID_PREFERENCE = "utter_intake_invalid_preference"


def _now() -> datetime:
    return schedule.utc_now()


def _slots(tracker: Tracker) -> Dict[str, Any]:
    return dict(tracker.slots)


async def _free_starts(**window: Any) -> List[datetime]:
    """The next free call times; blocking database work runs off the action server's event loop."""
    return await asyncio.to_thread(
        store.free_starts, practice(), _now(), 3, window.get("not_before"), window.get("not_after")
    )


async def _offer_times(dispatcher: CollectingDispatcher, response: str, **window: Any) -> bool:
    """Says `response` with free times (inside `window` if given) as buttons; False if the database is down.

    When the window has no free time, says so and offers the next free times overall instead."""
    try:
        starts = await _free_starts(**window)
        if not starts and window:
            response = "utter_intake_time_none_in_window"
            starts = await _free_starts()
    except DatabaseUnavailable:
        dispatcher.utter_message(response="utter_intake_database_down")
        return False
    if not starts:
        dispatcher.utter_message(response="utter_intake_no_times")
        return True
    dispatcher.utter_message(response=response, buttons=schedule.time_buttons(practice(), starts))
    return True


def _count_failure(dispatcher: CollectingDispatcher, tracker: Tracker) -> float:
    """One more miss in a row; after MAX_TRIES, also the offer to call the practice instead."""
    failures = int(tracker.get_slot("intake_failures") or 0) + 1
    if failures >= flow.MAX_TRIES:
        dispatcher.utter_message(response="utter_intake_offer_call_instead")
        failures = 0
    return float(failures)


def _rejected(dispatcher: CollectingDispatcher, tracker: Tracker, slot: str, response: str) -> Validated:
    """A specific re-prompt for this answer."""
    dispatcher.utter_message(response=response)
    return {slot: None, "intake_failures": _count_failure(dispatcher, tracker)}


def _accepted(values: Validated) -> Validated:
    return {**values, "intake_failures": 0.0}


def _checked(dispatcher: CollectingDispatcher, tracker: Tracker, slot: str, parsed: Any, invalid: str) -> Validated:
    """The parsed answer for `slot`, or (when it could not be read: None) the `invalid` re-prompt."""
    if parsed is None:
        return _rejected(dispatcher, tracker, slot, invalid)
    return _accepted({slot: parsed})


async def _check_time(dispatcher: CollectingDispatcher, text: str) -> Tuple[datetime | None, bool]:
    """(start, False) if the time asked for is bookable and free. Otherwise (None, was_a_mistake) after
    saying why and offering other times; naming a day or part of a day is not a mistake, just unfinished."""
    facts = practice()
    now = _now()
    request = schedule.parse_time_request(facts, text, now)
    if request is None:
        await _offer_times(dispatcher, "utter_intake_time_not_understood")
        return None, True
    if request.exact is None:
        assert request.window_start and request.window_end
        if request.window_end <= now:
            await _offer_times(dispatcher, "utter_intake_time_past")
            return None, True
        await _offer_times(
            dispatcher,
            "utter_intake_time_pick_in_window",
            not_before=request.window_start,
            not_after=request.window_end,
        )
        return None, False
    start = request.exact
    if start <= now:
        await _offer_times(dispatcher, "utter_intake_time_past")
        return None, True
    if not schedule.is_bookable_start(facts, start, now):
        in_hours = facts.hours.is_open(start.astimezone(facts.zone))
        if in_hours and start < now + schedule.MIN_LEAD:
            response = "utter_intake_time_too_soon"
        else:
            response = "utter_intake_time_not_on_grid" if in_hours else "utter_intake_time_outside_hours"
        # Inside opening hours the nearest later times help most; outside them, simply the next free ones.
        window = {"not_before": start} if in_hours else {}
        await _offer_times(dispatcher, response, **window)
        return None, True
    try:
        free = await _free_starts(not_before=start, not_after=start + timedelta(minutes=1))
    except DatabaseUnavailable:
        dispatcher.utter_message(response="utter_intake_database_down")
        return None, False
    if start not in free:
        await _offer_times(dispatcher, "utter_intake_time_taken", not_before=start)
        return None, False
    return start, False


async def _time_answer(
    dispatcher: CollectingDispatcher, tracker: Tracker, slot: str, text: str
) -> Tuple[datetime | None, Validated]:
    start, mistake = await _check_time(dispatcher, text)
    if start is not None:
        return start, {}
    failures = _count_failure(dispatcher, tracker) if mistake else float(tracker.get_slot("intake_failures") or 0)
    # The reply above already offered times as buttons: the form's next question would repeat it.
    return None, {slot: None, "intake_failures": failures, "intake_asked": True}


class ValidateIntakeForm(FormValidationAction):
    """Checks each answer of intake_form; on the final 'yes' it stores the booking."""

    def name(self) -> str:
        return "validate_intake_form"

    async def required_slots(
        self, domain_slots: List[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[str]:
        return flow.required_slots(_slots(tracker))

    async def validate_intake_care_for(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        care_for = answers.parse_care_for(str(value))
        return _checked(dispatcher, tracker, "intake_care_for", care_for, "utter_intake_invalid_care_for")

    async def validate_intake_age(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        return _checked(dispatcher, tracker, "intake_age", answers.parse_age(str(value)), "utter_intake_invalid_age")

    async def validate_intake_guardian_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        name = answers.parse_name(str(value))
        if name is None:
            return _rejected(dispatcher, tracker, "intake_guardian_name", "utter_intake_invalid_name")
        return _accepted({"intake_guardian_name": " ".join(part for part in name if part)})

    async def validate_intake_guardian_contact(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        contact = answers.parse_contact(str(value))
        if contact.problem:
            return _rejected(dispatcher, tracker, "intake_guardian_contact", f"utter_intake_invalid_{contact.problem}")
        return _accepted({"intake_guardian_contact": contact.phone or contact.email})

    async def validate_intake_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        name = answers.parse_name(str(value))
        if name is None:
            return _rejected(dispatcher, tracker, "intake_name", "utter_intake_invalid_name")
        first, last = name
        full = f"{first} {last}" if last else first
        return _accepted({"intake_name": full, "intake_first_name": first, "intake_last_name": last})

    async def validate_intake_contact(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        contact = answers.parse_contact(str(value))
        if contact.problem:
            return _rejected(dispatcher, tracker, "intake_contact", f"utter_intake_invalid_{contact.problem}")
        shown = " and ".join(item for item in (contact.phone, contact.email) if item)
        values: Validated = {"intake_contact": shown, "intake_phone": contact.phone, "intake_email": contact.email}
        # Only an email: there is nothing to choose, so that question is skipped.
        values["intake_contact_method"] = "email" if contact.phone is None else None
        return _accepted(values)

    async def validate_intake_contact_method(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        has_phone = bool(tracker.get_slot("intake_phone"))
        has_email = bool(tracker.get_slot("intake_email"))
        method = answers.parse_method(str(value), has_phone, has_email)
        return _checked(dispatcher, tracker, "intake_contact_method", method, "utter_intake_invalid_method")

    async def validate_intake_leave_message(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        answer = answers.parse_yes_no(str(value))
        if answer is None:
            return _rejected(dispatcher, tracker, "intake_leave_message", "utter_intake_invalid_yes_no")
        return _accepted({"intake_leave_message": "yes" if answer else "no"})

    async def validate_intake_state(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        state = answers.parse_state(str(value))
        if state is None:
            return _rejected(dispatcher, tracker, "intake_state", "utter_intake_invalid_state")
        if state not in practice().states_served:
            # Therapists must be licensed where the client lives: end kindly with other options.
            dispatcher.utter_message(response="utter_intake_state_not_served")
            return {"intake_state": state, "intake_outcome": "out_of_area"}
        return _accepted({"intake_state": state})

    async def validate_intake_insurance(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        insurance = answers.parse_insurance(str(value), practice().insurers)
        if insurance is None:
            return _rejected(dispatcher, tracker, "intake_insurance", "utter_intake_invalid_insurance")
        if not insurance.accepted:
            dispatcher.utter_message(response="utter_intake_insurance_unknown")
        return _accepted({"intake_insurance": insurance.name, "intake_insurance_accepted": insurance.accepted})

    async def validate_intake_care_type(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        care_type = answers.parse_care_type(str(value))
        return _checked(dispatcher, tracker, "intake_care_type", care_type, "utter_intake_invalid_care_type")

    async def validate_intake_wants_preferences(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        if answers.is_skip(str(value)) or answers.parse_yes_no(str(value)) is False:
            return _accepted({"intake_wants_preferences": "no"})
        if answers.parse_yes_no(str(value)) is True:
            return _accepted({"intake_wants_preferences": "yes"})
        return _rejected(dispatcher, tracker, "intake_wants_preferences", "utter_intake_invalid_yes_no")

    async def validate_intake_pref_format(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        return _checked(dispatcher, tracker, "intake_pref_format", answers.parse_format(str(value)), INVALID_PREFERENCE)

    async def validate_intake_pref_gender(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        return _checked(dispatcher, tracker, "intake_pref_gender", answers.parse_gender(str(value)), INVALID_PREFERENCE)

    async def validate_intake_pref_language(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        parsed = answers.parse_free_preference(str(value))
        return _checked(dispatcher, tracker, "intake_pref_language", parsed, INVALID_PREFERENCE)

    async def validate_intake_pref_affirming(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        parsed = answers.parse_affirming(str(value))
        return _checked(dispatcher, tracker, "intake_pref_affirming", parsed, INVALID_PREFERENCE)

    async def validate_intake_pref_approaches(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        parsed = answers.parse_free_preference(str(value))
        return _checked(dispatcher, tracker, "intake_pref_approaches", parsed, INVALID_PREFERENCE)

    async def validate_intake_time(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        start, rejected = await _time_answer(dispatcher, tracker, "intake_time", str(value))
        if start is None:
            return rejected
        return _accepted(
            {
                "intake_time": start.isoformat(),
                "intake_time_display": schedule.describe(practice(), start),
            }
        )

    async def validate_intake_consent(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        answer = answers.parse_yes_no(str(value))
        if answer is None:
            return _rejected(dispatcher, tracker, "intake_consent", "utter_intake_invalid_yes_no")
        if answer is False:
            dispatcher.utter_message(response="utter_intake_no_consent")
            return {"intake_consent": "no", "intake_outcome": "no_consent"}
        return _accepted({"intake_consent": "yes"})

    async def validate_intake_confirmed(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        text = str(value)
        targets = flow.correction_targets(text)
        if targets:
            return {**flow.cleared(targets), "intake_confirmed": None}
        answer = answers.parse_yes_no(text)
        if answer is None and "book" in text.lower():
            answer = True
        if answer is False:
            dispatcher.utter_message(response="utter_intake_which_field")
            return {"intake_confirmed": None, "intake_asked": True}
        if answer is None:
            return _rejected(dispatcher, tracker, "intake_confirmed", "utter_intake_invalid_confirm")
        return await book_from_slots(dispatcher, tracker)


def details_from_slots(slots: Dict[str, Any]) -> store.IntakeDetails:
    return store.IntakeDetails(
        care_for=slots["intake_care_for"],
        age=int(slots["intake_age"]),
        first_name=slots["intake_first_name"],
        last_name=slots.get("intake_last_name"),
        guardian_name=slots.get("intake_guardian_name"),
        guardian_contact=slots.get("intake_guardian_contact"),
        phone=slots.get("intake_phone"),
        email=slots.get("intake_email"),
        preferred_method=slots["intake_contact_method"],
        ok_to_leave_message=slots.get("intake_leave_message") == "yes",
        state=slots["intake_state"],
        insurance=slots["intake_insurance"],
        insurance_accepted=bool(slots.get("intake_insurance_accepted")),
        care_type=slots["intake_care_type"],
        preferences=flow.preferences(slots),
    )


async def _own_booking(conversation_id: str, start: datetime) -> store.BookedCall | None:
    try:
        return await asyncio.to_thread(retries.own_booking, conversation_id, start)
    except DatabaseUnavailable:
        return None  # then the ordinary "taken" answer: other times, every answer kept


async def book_from_slots(dispatcher: CollectingDispatcher, tracker: Tracker) -> Validated:
    """Stores the booking. A lost race or an outage keeps every answer so nothing has to be retyped."""
    slots = _slots(tracker)
    start = datetime.fromisoformat(slots["intake_time"])
    try:
        booked = await asyncio.to_thread(
            store.book, practice(), details_from_slots(slots), start, _now(), conversation_id=tracker.sender_id
        )
    except (store.SlotTaken, store.SlotNotBookable):
        # A retried "yes" whose first attempt was stored after Rasa stopped waiting (bot/intake/retries.py).
        mine = await _own_booking(tracker.sender_id, start)
        if mine is not None:
            return {"intake_confirmed": "yes", "intake_booking_code": mine.code, "intake_outcome": "booked"}
        await _offer_times(dispatcher, "utter_intake_time_just_taken")
        return {"intake_time": None, "intake_time_display": None, "intake_confirmed": None, "intake_asked": True}
    except DatabaseUnavailable:
        dispatcher.utter_message(response="utter_intake_database_down_confirm")
        return {"intake_confirmed": None, "intake_asked": True}
    return {"intake_confirmed": "yes", "intake_booking_code": booked.code, "intake_outcome": "booked"}


class ActionAskIntakeTime(Action):
    """Asks for a time with the next three free ones as buttons (unless a re-prompt just did that)."""

    def name(self) -> str:
        return "action_ask_intake_time"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        if tracker.get_slot("intake_asked"):
            return [SlotSet("intake_asked", False)]
        await _offer_times(dispatcher, "utter_ask_intake_time")
        return []


class ActionAskIntakeNewTime(ActionAskIntakeTime):
    def name(self) -> str:
        return "action_ask_intake_new_time"


class ActionAskIntakeConfirmed(Action):
    """The summary of every answer, then the question whether to book it."""

    def name(self) -> str:
        return "action_ask_intake_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        if tracker.get_slot("intake_asked"):
            return [SlotSet("intake_asked", False)]  # the reply just before already asked
        dispatcher.utter_message(response="utter_intake_summary")
        if flow.is_minor(_slots(tracker)):
            dispatcher.utter_message(response="utter_intake_summary_guardian")
        if tracker.get_slot("intake_wants_preferences") == "yes":
            dispatcher.utter_message(response="utter_intake_summary_preferences")
        dispatcher.utter_message(response="utter_ask_intake_confirmed")
        return []


class ActionExplainIntakeQuestion(Action):
    """'Why do you need that?': the reason for whichever question is open."""

    def name(self) -> str:
        return "action_explain_intake_question"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        slot = tracker.get_slot("requested_slot") or ""
        topic = "preferences" if slot in flow.PREFERENCE_SLOTS else slot.removeprefix("intake_")
        response = f"utter_intake_why_{topic}"
        if response not in domain.get("responses", {}):
            response = "utter_intake_why_general"
        dispatcher.utter_message(response=response)
        return [SlotSet("intake_asked", False)]


def _clear_all() -> List[EventType]:
    return [SlotSet(name, None) for name in flow.ALL_SLOTS] + [SlotSet("requested_slot", None)]


class ActionIntakeStop(Action):
    """'Never mind': forget the half-finished answers and say that nothing was booked."""

    def name(self) -> str:
        return "action_intake_stop"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        dispatcher.utter_message(response="utter_intake_stopped")
        return _clear_all()


class ActionIntakeFinish(Action):
    """After intake_form ends: the confirmation and next steps, then a clean slate for another booking."""

    def name(self) -> str:
        return "action_intake_finish"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        if tracker.get_slot("intake_outcome") == "booked":
            dispatcher.utter_message(
                response="utter_intake_booked",
                intake_booking_code=tracker.get_slot("intake_booking_code"),
                intake_time_display=tracker.get_slot("intake_time_display"),
            )
            dispatcher.utter_message(response="utter_intake_next_steps")
        return _clear_all()


class ValidateIntakeCancelForm(FormValidationAction):
    """Finds the booking from its confirmation code plus the phone or email given when booking."""

    announce_found = False  # cancelling says the time in its final reply

    def name(self) -> str:
        return "validate_intake_cancel_form"

    async def validate_intake_lookup_code(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        code = normalise_code(str(value))
        if code is None:
            return _rejected(dispatcher, tracker, "intake_lookup_code", "utter_intake_invalid_code")
        return _accepted({"intake_lookup_code": code})

    async def validate_intake_lookup_contact(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        code = str(tracker.get_slot("intake_lookup_code") or "")
        try:
            booked = await asyncio.to_thread(store.find_booking, code, str(value))
        except store.BookingNotFound:
            # Same reply whether the code or the contact was wrong: no hints for someone guessing codes.
            rejected = _rejected(dispatcher, tracker, "intake_lookup_contact", "utter_intake_booking_not_found")
            return {**rejected, "intake_lookup_code": None}
        except DatabaseUnavailable:
            dispatcher.utter_message(response="utter_intake_database_down")
            return {"intake_lookup_contact": None}
        shown = schedule.describe(practice(), booked.starts_at)
        if self.announce_found:
            # Passed along because the slot is only set after this reply is rendered.
            dispatcher.utter_message(response="utter_intake_booking_found", intake_time_display=shown)
        return _accepted({"intake_lookup_contact": str(value), "intake_time_display": shown})


class ValidateIntakeRescheduleForm(ValidateIntakeCancelForm):
    """Like cancelling, then a new time, moved in one transaction (the old time is freed)."""

    announce_found = True

    def name(self) -> str:
        return "validate_intake_reschedule_form"

    async def validate_intake_new_time(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Validated:
        start, rejected = await _time_answer(dispatcher, tracker, "intake_new_time", str(value))
        if start is None:
            return rejected
        code = str(tracker.get_slot("intake_lookup_code") or "")
        contact = str(tracker.get_slot("intake_lookup_contact") or "")
        try:
            await asyncio.to_thread(store.reschedule, practice(), code, contact, start, _now())
        except (store.SlotTaken, store.SlotNotBookable):
            await _offer_times(dispatcher, "utter_intake_time_just_taken")
            return {"intake_new_time": None, "intake_asked": True}
        except store.BookingNotFound:
            dispatcher.utter_message(response="utter_intake_booking_not_found")
            return {"intake_new_time": None, "intake_lookup_code": None, "intake_lookup_contact": None}
        except DatabaseUnavailable:
            dispatcher.utter_message(response="utter_intake_database_down")
            return {"intake_new_time": None, "intake_asked": True}
        return _accepted(
            {
                "intake_new_time": start.isoformat(),
                "intake_time_display": schedule.describe(practice(), start),
            }
        )


class ActionIntakeCancelBooking(Action):
    """Runs when intake_cancel_form is complete: cancels and frees the time."""

    def name(self) -> str:
        return "action_intake_cancel_booking"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        code = str(tracker.get_slot("intake_lookup_code") or "")
        contact = str(tracker.get_slot("intake_lookup_contact") or "")
        try:
            cancelled = await asyncio.to_thread(store.cancel, practice(), code, contact)
        except store.BookingNotFound:
            dispatcher.utter_message(response="utter_intake_booking_not_found")
            return _clear_all()
        except DatabaseUnavailable:
            # The code and contact stay in the conversation: asking to cancel again just retries.
            dispatcher.utter_message(response="utter_intake_database_down")
            return []
        dispatcher.utter_message(
            response="utter_intake_cancelled",
            intake_time_display=schedule.describe(practice(), cancelled.starts_at),
        )
        return _clear_all()


class ActionIntakeRescheduled(Action):
    """Runs when intake_reschedule_form is complete: the new time was stored by its validation."""

    def name(self) -> str:
        return "action_intake_rescheduled"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        if tracker.get_slot("intake_new_time"):
            dispatcher.utter_message(
                response="utter_intake_rescheduled",
                intake_time_display=tracker.get_slot("intake_time_display"),
                intake_lookup_code=tracker.get_slot("intake_lookup_code"),
            )
        return _clear_all()
