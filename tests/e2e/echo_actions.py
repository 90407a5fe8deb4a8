"""One custom action for tests/e2e/test_action_keepalive.py: answers with a slot naming its process."""

from __future__ import annotations

import os
from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher


class ActionEcho(Action):
    def name(self) -> str:
        return "action_echo"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[Dict[str, Any]]:
        return [SlotSet("server_pid", os.getpid())]
