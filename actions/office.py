"""Actions about the office itself; the facts come from bot.settings."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.settings import practice


class ActionOfficeStatus(Action):
    """Tells whether the intake line is staffed right now."""

    def name(self) -> str:
        return "action_office_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        facts = practice()
        is_open = facts.hours.is_open(facts.local_now())
        dispatcher.utter_message(response="utter_office_open" if is_open else "utter_office_closed")
        return []
