"""Rasa's REST channel with a checked body and a clear failure, at the same URL (/webhooks/rest/webhook).

Rasa's own RestInput, found by fuzzing and fault tests: a body that is not a JSON object gives 500; a
missing sender puts the visitor into a conversation named "default" shared with every other such
visitor; a sender longer than 255 characters fails in PostgreSQL; and when the turn fails (Redis or the
database unreachable) it answers 200 with no messages and logs the visitor's text. This channel answers
400 to a malformed body and 503 when the turn fails, and logs only the kind of error. Messages that
express risk are handled before ordinary ones (bot/ops/priority.py).
Configured in credentials.yml as `bot.ops.rest_channel.CheckedRestInput:` (replaces `rest:`).
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, List

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.ops.priority import PriorityGate, Screen, concurrency_from_env, screen_for
from bot.safety.levels import RISK_INTENTS

logger = logging.getLogger(__name__)
MAX_SENDER_LENGTH = 255


def checked_rest_body(body: Any) -> Dict[str, Any]:
    """The REST channel's JSON body if it is well formed; otherwise the reason, as a ValueError."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    sender, message = body.get("sender"), body.get("message")
    if not isinstance(sender, str) or not 0 < len(sender) <= MAX_SENDER_LENGTH:
        raise ValueError(f"'sender' must be a string of 1-{MAX_SENDER_LENGTH} characters")
    if not isinstance(message, str):
        raise ValueError("'message' must be a string")
    return body


class CheckedRestInput(RestInput):
    def __init__(self) -> None:
        self.gate = PriorityGate(concurrency_from_env())
        self._screen: Screen | None = None

    @classmethod
    def name(cls) -> str:
        return "rest"  # same URL as Rasa's REST channel

    def is_urgent(self, request: Request, text: str) -> bool:
        if self._screen is None:  # the model is loaded after the channels are created
            self._screen = screen_for(getattr(request.app.ctx, "agent", None))
        return self._screen(text) if self._screen is not None else False

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("checked_rest_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = checked_rest_body(request.json)  # Sanic answers 400 itself when it is not JSON
            except ValueError as error:
                return response.json({"error": str(error)}, status=400)
            collector = CollectingOutputChannel()
            message = UserMessage(
                body["message"], collector, body["sender"], input_channel=self.name(),
                metadata=self.get_metadata(request),
            )
            try:
                async with self.gate.admit(urgent=self.is_urgent(request, message.text or "")):
                    await on_new_message(message)
            except Exception as error:  # any failed turn is reported the same way
                # The kind of error only: its text could quote what the visitor wrote.
                logger.error("A REST turn failed (%s); answered 503.", type(error).__name__)
                return response.json({"error": "the assistant is unavailable"}, status=503)
            if not collector.messages:
                collector.messages.extend(await crisis_reply_while_paused(request, body["sender"]))
            return response.json(collector.messages)

        return webhook


async def crisis_reply_while_paused(request: Request, sender: str) -> List[Dict[str, Any]]:
    """The crisis reply for a risk message in a paused (handed-off) conversation.

    Rasa records but does not answer messages while a conversation is paused; socket.io visitors get the
    crisis reply pushed by the handoff watcher, but a REST caller can only get it in this response.
    """
    agent = getattr(request.app.ctx, "agent", None)
    if agent is None or agent.tracker_store is None:
        return []
    tracker = await agent.tracker_store.retrieve(sender)
    if tracker is None or not tracker.is_paused():
        return []
    intent = (tracker.latest_message.intent or {}).get("name") if tracker.latest_message else None
    if intent not in RISK_INTENTS.values():
        return []
    reply = await agent.nlg.generate(f"utter_{intent}", tracker, "rest")
    return [{"recipient_id": sender, **reply}] if reply else []
