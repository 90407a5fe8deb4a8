"""What the staff side asks of the Rasa server, over its HTTP API with the token.

Messages go to the conversation's latest input channel (`output_channel=latest`), so a visitor on the
socket.io widget sees them live. A staff reply is a bot message whose `custom.data` carries the text
and the marker `{"from_staff": true, "staff_name": <first name>}`: Rasa's socket.io channel emits
`custom.data` as the `bot_uttered` payload, so the widget receives
`{"text": …, "from_staff": true, "staff_name": "Dana"}` and can show it as coming from a person.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Protocol
from urllib.parse import quote

import requests

log = logging.getLogger(__name__)


class RasaUnavailable(RuntimeError):
    """The Rasa server did not accept the request."""


class ConversationControl(Protocol):
    def pause(self, conversation_id: str) -> None: ...

    def resume(self, conversation_id: str) -> None: ...

    def utter(self, conversation_id: str, response: str, slots: Dict[str, str] | None = None) -> None: ...

    def staff_reply(self, conversation_id: str, text: str, staff_name: str) -> None: ...


def staff_message_event(text: str, staff_name: str) -> Dict[str, Any]:
    marker = {"from_staff": True, "staff_name": staff_name}
    return {"event": "bot", "text": None, "data": {"custom": {"data": {"text": text, **marker}}}, "metadata": marker}


class RasaHttpApi:
    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _post(self, conversation_id: str, path: str, body: Any, **params: str) -> None:
        url = f"{self.base_url}/conversations/{quote(conversation_id, safe='')}/{path}"
        try:
            response = requests.post(url, json=body, params={"token": self.token, **params}, timeout=self.timeout)
        except requests.RequestException as error:
            raise RasaUnavailable(f"Rasa server unreachable: {error}") from error
        if response.status_code >= 300:
            raise RasaUnavailable(f"Rasa answered HTTP {response.status_code} to {path}: {response.text[:200]}")

    def _append(self, conversation_id: str, events: List[Dict[str, Any]], send: bool = False) -> None:
        params = {"execute_side_effects": "true", "output_channel": "latest"} if send else {}
        self._post(conversation_id, "tracker/events", events, **params)

    def pause(self, conversation_id: str) -> None:
        self._append(conversation_id, [{"event": "pause"}])

    def resume(self, conversation_id: str) -> None:
        self._append(conversation_id, [{"event": "resume"}])

    def utter(self, conversation_id: str, response: str, slots: Dict[str, str] | None = None) -> None:
        """Runs a domain response inside Rasa (its NLG fills the practice's facts and these slots)."""
        if slots:
            self._append(conversation_id, [{"event": "slot", "name": k, "value": v} for k, v in slots.items()])
        self._post(conversation_id, "execute", {"name": response}, output_channel="latest")
        # Rules expect a user turn to follow action_listen; without it the next prediction could differ.
        self._append(conversation_id, [{"event": "action", "name": "action_listen"}])

    def staff_reply(self, conversation_id: str, text: str, staff_name: str) -> None:
        self._append(conversation_id, [staff_message_event(text, staff_name)], send=True)
