"""Which Rasa process the staff side talks to, when there are several (`make run-prod`).

Messages pushed to a visitor (handoff notice, crisis reply while paused, staff replies) travel over the
socket.io connection, and only the Rasa process holding that connection can send on it; nginx keeps a
visitor on one process. Rasa's broker stamps each event with its process name (RASA_ENVIRONMENT as the
message's app_id), the consumer records it with the handled event, and these classes send to that
process, falling back to the default RASA_API_URL when it does not answer (it may be restarting; the
visitor's browser then reconnects to another process).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Mapping

from sqlalchemy import select

from bot.db import with_database
from bot.handoff.config import HandoffSettings
from bot.handoff.models import HandledEvent
from bot.handoff.rasa_api import ConversationControl, RasaHttpApi

log = logging.getLogger(__name__)


class RoutedControl:
    """The Rasa process that handled the turn first; if it does not answer, the default one."""

    def __init__(self, primary: ConversationControl, fallback: ConversationControl) -> None:
        self.primary = primary
        self.fallback = fallback

    def _either(self, name: str, *args: Any) -> None:
        try:
            getattr(self.primary, name)(*args)
        except Exception as error:
            log.warning("handoff: the conversation's Rasa process did not take %s (%s); using the default", name, error)
            getattr(self.fallback, name)(*args)

    def pause(self, conversation_id: str) -> None:
        self._either("pause", conversation_id)

    def resume(self, conversation_id: str) -> None:
        self._either("resume", conversation_id)

    def utter(self, conversation_id: str, response: str, slots: Dict[str, str] | None = None) -> None:
        self._either("utter", conversation_id, response, slots)

    def staff_reply(self, conversation_id: str, text: str, staff_name: str) -> None:
        self._either("staff_reply", conversation_id, text, staff_name)


def process_controls(settings: HandoffSettings) -> Dict[str, ConversationControl]:
    return {name: RasaHttpApi(url, settings.rasa_token) for name, url in settings.rasa_processes.items()}


class ConversationRouter:
    """For the console: each call goes to the process that published the conversation's latest handled
    visitor message (recorded by the broker consumer), else to the default process."""

    def __init__(
        self, default: ConversationControl, controls: Mapping[str, ConversationControl], database_url: str
    ) -> None:
        self.default = default
        self.controls = controls
        self.database_url = database_url

    def for_conversation(self, conversation_id: str) -> ConversationControl:
        query = (
            select(HandledEvent.publisher)
            .where(HandledEvent.conversation_id == conversation_id, HandledEvent.publisher.is_not(None))
            .order_by(HandledEvent.event_id.desc())
            .limit(1)
        )
        # The database is down: the default process is still worth a try.
        publisher = with_database(
            lambda session: session.execute(query).scalar(),
            None,
            "handoff: could not look up the conversation's Rasa process",
            self.database_url,
        )
        control = self.controls.get(publisher or "")
        return RoutedControl(control, self.default) if control is not None else self.default

    def pause(self, conversation_id: str) -> None:
        self.for_conversation(conversation_id).pause(conversation_id)

    def resume(self, conversation_id: str) -> None:
        self.for_conversation(conversation_id).resume(conversation_id)

    def utter(self, conversation_id: str, response: str, slots: Dict[str, str] | None = None) -> None:
        self.for_conversation(conversation_id).utter(conversation_id, response, slots)

    def staff_reply(self, conversation_id: str, text: str, staff_name: str) -> None:
        self.for_conversation(conversation_id).staff_reply(conversation_id, text, staff_name)


def conversation_control(settings: HandoffSettings) -> ConversationControl:
    """One Rasa process: its HTTP API. Several (HANDOFF_RASA_PROCESSES): routed per conversation."""
    default = RasaHttpApi(settings.rasa_api_url, settings.rasa_token)
    if not settings.rasa_processes:
        return default
    return ConversationRouter(default, process_controls(settings), settings.database_url)
