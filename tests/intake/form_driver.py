"""Plays the part of Rasa's FormAction: puts each answer in the requested slot and runs the validator."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from actions.intake import ValidateIntakeForm
from tests.intake.conftest import DOMAIN, run, slot_events, tracker

ADULT_ANSWERS = {
    "intake_care_for": "for me",
    "intake_age": "34",
    "intake_name": "my name is Maria Lopez",
    "intake_contact": "(212) 555-0123 and maria@example.com",
    "intake_contact_method": "text me",
    "intake_leave_message": "no, please don't",
    "intake_state": "NY",
    "intake_insurance": "UHC",
    "intake_care_type": "therapy only",
    "intake_wants_preferences": "skip",
    "intake_time": "2026-11-23 08:00",
    "intake_consent": "yes",
    "intake_confirmed": "yes",
}


class FormSession:
    def __init__(self, validator: ValidateIntakeForm | None = None) -> None:
        self.validator = validator or ValidateIntakeForm()
        self.slots: Dict[str, Any] = {"requested_slot": "intake_care_for"}
        self.messages: List[Dict[str, Any]] = []

    @property
    def requested(self) -> Any:
        return self.slots.get("requested_slot")

    def answer(self, text: str) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
        requested = self.requested
        events, messages = run(self.validator, tracker(self.slots, text, {requested: text}))
        changes = slot_events(events)
        self.slots.update(changes)
        if "requested_slot" not in changes:
            # The SDK leaves the choice to Rasa when the list equals the domain's: the first empty slot.
            domain_slots = DOMAIN["forms"]["intake_form"]["required_slots"]
            self.slots["requested_slot"] = next((s for s in domain_slots if self.slots.get(s) is None), None)
        self.messages = messages
        return changes, messages

    def fill(self, answers: Dict[str, str], stop_before: str | None = None) -> None:
        for _ in range(60):
            if not self.requested or self.requested == stop_before:
                return
            asked = self.requested
            self.answer(answers[asked])
            assert self.requested != asked, f"{asked}: {answers[asked]!r} was refused: {self.messages}"
        raise AssertionError("the form never finished")
