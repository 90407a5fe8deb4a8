"""Fixtures for the staff side: a migrated app database, a real Rasa SQL tracker store, a fake Rasa API."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

# Rasa 3.6's tracker store uses SQLAlchemy 1.4 APIs that print a 2.0 migration banner on import.
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import (
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    Event,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot.db import upgrade
from bot.handoff.clock import ManualClock
from bot.handoff.config import HandoffSettings
from bot.handoff.rasa_api import staff_message_event

# Monday 5 Jan 2026, 15:00 UTC = 10:00 in New York: the office is open.
OPEN_HOURS_UTC = "2026-01-05T15:00:00+00:00"
# Sunday 4 Jan 2026: closed all day.
CLOSED_UTC = "2026-01-04T15:00:00+00:00"


def make_settings(tmp_path: Path, **overrides: Any) -> HandoffSettings:
    values: Dict[str, Any] = dict(
        database_url=f"sqlite:///{tmp_path / 'app.db'}",
        tracker_store_url=f"sqlite:///{tmp_path / 'tracker.db'}",
        rasa_api_url="http://127.0.0.1:9",
        rasa_token="test-token",
        console_url="http://localhost:5600/staff",
        webhook_url="http://127.0.0.1:9/hook",
        webhook_timeout_seconds=2.0,
        escalate_after_minutes=5.0,
        idle_timeout_minutes=15.0,
        watcher_poll_seconds=0.05,
        outbox_poll_seconds=0.1,
        fallbacks_before_handoff=2,
        acknowledge_every_minutes=5.0,
        secure_cookies=True,
        run_workers=False,
    )
    values.update(overrides)
    return HandoffSettings(**values)


class TrackerFile:
    """Rasa's own SQLTrackerStore on a SQLite file, so the watcher reads exactly what Rasa writes."""

    def __init__(self, path: Path) -> None:
        self.store = SQLTrackerStore(dialect="sqlite", db=str(path))
        self.trackers: Dict[str, DialogueStateTracker] = {}

    def add(self, sender: str, *events: Event) -> None:
        tracker = self.trackers.setdefault(sender, DialogueStateTracker(sender, slots=[]))
        for event in events:
            tracker.update(event)
        asyncio.run(self.store.save(tracker))

    def visitor(self, sender: str, text: str, intent: str, **parse_extra: Any) -> None:
        parse_data = {"intent": {"name": intent, "confidence": 0.9}, "entities": [], "text": text, **parse_extra}
        self.add(
            sender, UserUttered(text, intent=parse_data["intent"], parse_data=parse_data, input_channel="socketio")
        )

    def is_paused(self, sender: str) -> bool:
        return self.trackers[sender].is_paused()


@dataclass
class FakeRasa:
    """Stands in for Rasa's HTTP API and writes the same events Rasa would into the tracker store."""

    trackers: TrackerFile
    calls: List[Tuple[str, ...]] = field(default_factory=list)

    def pause(self, conversation_id: str) -> None:
        self.calls.append(("pause", conversation_id))
        self.trackers.add(conversation_id, ConversationPaused())

    def resume(self, conversation_id: str) -> None:
        self.calls.append(("resume", conversation_id))
        self.trackers.add(conversation_id, ConversationResumed())

    def utter(self, conversation_id: str, response: str, slots: Dict[str, str] | None = None) -> None:
        self.calls.append(("utter", conversation_id, response))
        self.trackers.add(conversation_id, BotUttered(text=f"[{response}]"))

    def staff_reply(self, conversation_id: str, text: str, staff_name: str) -> None:
        self.calls.append(("staff_reply", conversation_id, text, staff_name))
        self.trackers.add(conversation_id, Event.from_parameters(staff_message_event(text, staff_name)))

    def names(self, kind: str) -> List[str]:
        return [call[-1] for call in self.calls if call[0] == kind]


@pytest.fixture
def settings(tmp_path: Path) -> HandoffSettings:
    configured = make_settings(tmp_path)
    upgrade(configured.database_url)
    return configured


@pytest.fixture
def clock() -> ManualClock:
    from datetime import datetime

    return ManualClock(datetime.fromisoformat(OPEN_HOURS_UTC))


@pytest.fixture
def trackers(tmp_path: Path) -> TrackerFile:
    return TrackerFile(tmp_path / "tracker.db")


@pytest.fixture
def rasa(trackers: TrackerFile) -> FakeRasa:
    return FakeRasa(trackers)
