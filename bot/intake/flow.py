"""Which questions the intake form asks, in which order, and what a correction re-asks.

Pure functions over slot values so they are easy to test without Rasa.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping

ADULT_AGE = 18
MAX_TRIES = 3

# The domain's required_slots for intake_form, in asking order; required_slots() below drops the ones
# that do not apply (a guardian for adults, preference details when the person skipped them).
FORM_SLOTS = [
    "intake_care_for",
    "intake_age",
    "intake_guardian_name",
    "intake_guardian_contact",
    "intake_name",
    "intake_contact",
    "intake_contact_method",
    "intake_leave_message",
    "intake_state",
    "intake_insurance",
    "intake_care_type",
    "intake_wants_preferences",
    "intake_pref_format",
    "intake_pref_gender",
    "intake_pref_language",
    "intake_pref_affirming",
    "intake_pref_approaches",
    "intake_time",
    "intake_consent",
    "intake_confirmed",
]
PREFERENCE_SLOTS = [
    "intake_pref_format",
    "intake_pref_gender",
    "intake_pref_language",
    "intake_pref_affirming",
    "intake_pref_approaches",
]
# Filled by the validation action from the answers above; never asked directly.
DERIVED_SLOTS = [
    "intake_first_name",
    "intake_last_name",
    "intake_phone",
    "intake_email",
    "intake_insurance_accepted",
    "intake_time_display",
    "intake_booking_code",
    "intake_outcome",
    "intake_failures",
    "intake_asked",
]
MANAGE_SLOTS = ["intake_lookup_code", "intake_lookup_contact", "intake_new_time"]
ALL_SLOTS = FORM_SLOTS + DERIVED_SLOTS + MANAGE_SLOTS


def is_minor(slots: Mapping[str, Any]) -> bool:
    age = slots.get("intake_age")
    return isinstance(age, (int, float)) and age < ADULT_AGE


def required_slots(slots: Mapping[str, Any]) -> List[str]:
    if slots.get("intake_outcome"):
        return []  # the form ended early (out of area, no consent) or the call is booked
    needed = []
    for name in FORM_SLOTS:
        if name == "intake_guardian_name" and not is_minor(slots):
            continue
        # A parent booking for their child is the guardian: their own contact details follow anyway.
        if name == "intake_guardian_contact" and (not is_minor(slots) or slots.get("intake_care_for") == "my child"):
            continue
        if name in PREFERENCE_SLOTS and slots.get("intake_wants_preferences") != "yes":
            continue
        needed.append(name)
    return needed


CORRECTIONS: List[tuple[str, List[str]]] = [
    (r"guardian|parent", ["intake_guardian_name", "intake_guardian_contact"]),
    (
        r"\bwho\b|for whom|care is for|child|myself",
        ["intake_care_for", "intake_guardian_name", "intake_guardian_contact"],
    ),
    (r"\bage\b|\bold\b|years", ["intake_age", "intake_guardian_name", "intake_guardian_contact"]),
    (r"voicemail|leave a message|message", ["intake_leave_message"]),
    (r"\bhow to reach|method|prefer.*(call|text)|\btext\b|\bcall me\b", ["intake_contact_method"]),
    (r"phone|number|e-?mail|contact", ["intake_contact", "intake_phone", "intake_email", "intake_contact_method"]),
    (r"\bname\b", ["intake_name", "intake_first_name", "intake_last_name"]),
    (r"\bstate\b|live|location", ["intake_state"]),
    (r"insurance|insurer|self[- ]?pay|plan", ["intake_insurance", "intake_insurance_accepted"]),
    (r"prescriber|medication|psychiatr|therapy only|care type|kind of care", ["intake_care_type"]),
    (
        r"preference|therapist|gender|language|online|in person|lgbt|approach",
        ["intake_wants_preferences", *PREFERENCE_SLOTS],
    ),
    (
        r"\btime\b|\bday\b|date|when|slot|tomorrow|monday|tuesday|wednesday|thursday|friday",
        ["intake_time", "intake_time_display"],
    ),
]


def correction_targets(text: str) -> List[str]:
    """The slots to ask again for a correction like 'change my phone number' (empty if unclear)."""
    lowered = (text or "").lower()
    for pattern, slots in CORRECTIONS:
        if re.search(pattern, lowered):
            return slots
    return []


def cleared(slots: List[str]) -> Dict[str, Any]:
    return dict.fromkeys(slots)


def preferences(slots: Mapping[str, Any]) -> Dict[str, str]:
    return {
        name.removeprefix("intake_pref_"): str(slots[name])
        for name in PREFERENCE_SLOTS
        if slots.get(name) and slots.get(name) != "no preference"
    }
