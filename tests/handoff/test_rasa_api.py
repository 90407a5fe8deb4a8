"""The staff reply's shape, checked against Rasa's own socket.io output channel."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Tuple

from rasa.core.channels.socketio import SocketIOOutput
from rasa.shared.core.events import BotUttered, Event

from bot.handoff.rasa_api import staff_message_event
from bot.handoff.transcript import TrackerEvent, to_entries


class RecordingSocket:
    def __init__(self) -> None:
        self.emitted: List[Tuple[str, Any, Any]] = []

    async def emit(self, event: str, data: Any = None, room: Any = None, **_: Any) -> None:
        self.emitted.append((event, data, room))


def test_a_staff_reply_reaches_the_widget_as_one_marked_message() -> None:
    event = Event.from_parameters(staff_message_event("Hi, I'm <Dana>", "Dana"))
    assert isinstance(event, BotUttered)
    socket = RecordingSocket()
    asyncio.run(SocketIOOutput(socket, "bot_uttered").send_response("session-1", event.message()))
    assert socket.emitted == [
        ("bot_uttered", {"text": "Hi, I'm <Dana>", "from_staff": True, "staff_name": "Dana"}, "session-1")
    ]


def test_the_console_transcript_tells_staff_replies_from_bot_replies() -> None:
    staff: Dict[str, Any] = staff_message_event("On my way", "Dana")
    events = [
        TrackerEvent(1, "c", "user", 1.0, "greet", None, {"text": "hi", "parse_data": {"intent": {"name": "greet"}}}),
        TrackerEvent(2, "c", "bot", 2.0, None, None, {"text": "Hello!", "data": {}}),
        TrackerEvent(3, "c", "bot", 3.0, None, None, staff),
        TrackerEvent(4, "c", "pause", 4.0, None, None, {}),
    ]
    entries = [(entry.kind, entry.text, entry.author) for entry in to_entries(events)]
    assert entries == [
        ("visitor", "hi", ""),
        ("bot", "Hello!", ""),
        ("staff", "On my way", "Dana"),
        ("system", "Assistant paused: the conversation waits for staff", ""),
    ]


def test_the_safety_assessment_is_shown_only_when_it_found_risk() -> None:
    assessed = {
        "intent": {"name": "risk_acute"},
        "intent_before_safety": {"name": "greet"},
        "safety": {
            "level": "acute",
            "score": 0.91,
            "reasons": ["rule:intent"],
            "categories": ["suicide"],
            "topic": None,
        },
    }
    calm = {"intent": {"name": "greet"}, "safety": {"level": "none", "score": 0.0, "reasons": [], "categories": []}}
    events = [
        TrackerEvent(1, "c", "user", 1.0, "risk_acute", None, {"text": "x", "parse_data": assessed}),
        TrackerEvent(2, "c", "user", 2.0, "greet", None, {"text": "hi", "parse_data": calm}),
    ]
    risky, quiet = to_entries(events)
    assert risky.risk == {
        "level": "acute",
        "score": 0.91,
        "categories": ["suicide"],
        "reasons": ["rule:intent"],
        "classifier_intent": "greet",
    }
    assert quiet.risk == {}
