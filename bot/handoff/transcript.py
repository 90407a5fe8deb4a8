"""Reads conversations from Rasa's SQL tracker store (table `events`) for the watcher and the console."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, func, inspect, select
from sqlalchemy.engine import Engine

from bot.db import engine_for
from bot.handoff.wording import wording

_metadata = MetaData()
# The columns of rasa.core.tracker_store.SQLTrackerStore.SQLEvent that the staff side reads.
EVENTS = Table(
    "events",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255)),
    Column("type_name", String(255)),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)
STATE_EVENTS = ("pause", "resume", "restart", "session_started")
# A restart or a new session ends any form; their events carry no "name", which reads as "no form".
LOOP_EVENTS = ("active_loop", "restart", "session_started")


@dataclass(frozen=True)
class TrackerEvent:
    id: int
    sender_id: str
    type_name: str
    timestamp: float
    intent_name: str | None
    action_name: str | None
    data: Dict[str, Any]


@dataclass(frozen=True)
class TranscriptEntry:
    """One line of the transcript as staff see it; `text` is shown escaped, never as HTML."""

    event_id: int
    at: datetime
    kind: str  # visitor | bot | staff | system
    text: str
    author: str = ""
    intent: str = ""
    risk: Dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> Dict[str, Any]:
        return {
            "id": self.event_id,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "text": self.text,
            "author": self.author,
            "intent": self.intent,
            "risk": self.risk,
        }


class TrackerStoreReader:
    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def engine(self) -> Engine:
        return engine_for(self.url)

    def ready(self) -> bool:
        return inspect(self.engine).has_table("events")

    def max_event_id(self) -> int:
        if not self.ready():
            return 0
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.max(EVENTS.c.id))).scalar() or 0)

    def events_after(self, event_id: int, limit: int = 500) -> List[TrackerEvent]:
        if not self.ready():
            return []
        query = select(EVENTS).where(EVENTS.c.id > event_id).order_by(EVENTS.c.id).limit(limit)
        return self._run(query)

    def conversation(self, sender_id: str, after_id: int = 0) -> List[TrackerEvent]:
        if not self.ready():
            return []
        query = select(EVENTS).where(EVENTS.c.sender_id == sender_id, EVENTS.c.id > after_id).order_by(EVENTS.c.id)
        return self._run(query)

    def find_user_message(self, sender_id: str, timestamp: float, text: str | None) -> TrackerEvent | None:
        """The stored row of a visitor message known by its conversation and timestamp (a broker message
        carries no tracker-store id). None until Rasa has committed the turn."""
        if not self.ready():
            return None
        # Both sides store the same float; the window only absorbs a database's rounding.
        query = (
            select(EVENTS)
            .where(
                EVENTS.c.sender_id == sender_id,
                EVENTS.c.type_name == "user",
                EVENTS.c.timestamp.between(timestamp - 1e-3, timestamp + 1e-3),
            )
            .order_by(EVENTS.c.id)
        )
        found = self._run(query)
        same_text = [event for event in found if event.data.get("text") == text]
        candidates = same_text or found
        return candidates[0] if candidates else None

    def is_paused_before(self, sender_id: str, event_id: int) -> bool:
        """Whether the conversation was paused when this event arrived (the last state change decides)."""
        last = self._latest_before(EVENTS.c.type_name, sender_id, event_id, EVENTS.c.type_name.in_(STATE_EVENTS))
        return bool(last == "pause")

    def active_form_before(self, sender_id: str, event_id: int) -> str | None:
        """The form (active loop) running when this event arrived, if any."""
        raw = self._latest_before(EVENTS.c.data, sender_id, event_id, EVENTS.c.type_name.in_(LOOP_EVENTS))
        return (json.loads(raw) if raw else {}).get("name")

    def last_action_before(self, sender_id: str, event_id: int) -> str | None:
        """The assistant's last action before this event (action_listen aside): what the visitor answered."""
        return self._latest_before(
            EVENTS.c.action_name,
            sender_id,
            event_id,
            EVENTS.c.type_name == "action",
            EVENTS.c.action_name != "action_listen",
        )

    def _latest_before(self, column: Any, sender_id: str, event_id: int, *conditions: Any) -> Any:
        """`column` of the conversation's latest event before `event_id` that meets `conditions` (None if none)."""
        query = (
            select(column)
            .where(EVENTS.c.sender_id == sender_id, EVENTS.c.id < event_id, *conditions)
            .order_by(EVENTS.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            return connection.execute(query).scalar()

    def recent_user_intents(self, sender_id: str, up_to_id: int, count: int) -> List[str | None]:
        query = (
            select(EVENTS.c.intent_name)
            .where(EVENTS.c.sender_id == sender_id, EVENTS.c.id <= up_to_id, EVENTS.c.type_name == "user")
            .order_by(EVENTS.c.id.desc())
            .limit(count)
        )
        with self.engine.connect() as connection:
            return [row[0] for row in connection.execute(query)]

    def _run(self, query: Any) -> List[TrackerEvent]:
        with self.engine.connect() as connection:
            return [
                TrackerEvent(
                    id=row.id,
                    sender_id=row.sender_id,
                    type_name=row.type_name,
                    timestamp=row.timestamp or 0.0,
                    intent_name=row.intent_name,
                    action_name=row.action_name,
                    data=json.loads(row.data or "{}"),
                )
                for row in connection.execute(query)
            ]


SAFETY_KEY = "safety"  # bot.safety.component puts its assessment under this parse-data key
SAFETY_ORIGINAL_INTENT_KEY = "intent_before_safety"
SHOWN_ASSESSMENT_FIELDS = ("level", "score", "categories", "reasons", "topic")


def _risk_from_parse_data(parse_data: Dict[str, Any]) -> Dict[str, Any]:
    """The safety component's assessment when it found any risk, else just the risk intent (if any)."""
    risk: Dict[str, Any] = {}
    assessment = parse_data.get(SAFETY_KEY)
    if isinstance(assessment, dict) and assessment.get("level") not in (None, "", "none"):
        risk.update(
            {key: assessment[key] for key in SHOWN_ASSESSMENT_FIELDS if assessment.get(key) not in (None, [], "")}
        )
        original = (parse_data.get(SAFETY_ORIGINAL_INTENT_KEY) or {}).get("name")
        if original:
            risk["classifier_intent"] = original
    risk.update({key: value for key, value in parse_data.items() if "risk" in key.lower()})
    intent = (parse_data.get("intent") or {}).get("name") or ""
    if intent.startswith("risk_"):
        risk.setdefault("level", intent.removeprefix("risk_"))
    return risk


def to_entries(events: List[TrackerEvent]) -> List[TranscriptEntry]:
    entries: List[TranscriptEntry] = []
    system_lines = wording().system_lines
    for event in events:
        at = datetime.fromtimestamp(event.timestamp, tz=timezone.utc)
        if event.type_name == "user":
            parse_data = event.data.get("parse_data") or {}
            entries.append(
                TranscriptEntry(
                    event.id,
                    at,
                    "visitor",
                    str(event.data.get("text") or ""),
                    intent=event.intent_name or "",
                    risk=_risk_from_parse_data(parse_data),
                )
            )
        elif event.type_name == "bot":
            custom = ((event.data.get("data") or {}).get("custom") or {}).get("data") or {}
            if custom.get("from_staff"):
                entries.append(
                    TranscriptEntry(event.id, at, "staff", str(custom.get("text", "")), custom.get("staff_name", ""))
                )
            else:
                entries.append(TranscriptEntry(event.id, at, "bot", str(event.data.get("text") or "")))
        elif event.type_name in system_lines:  # how state changes read in the transcript
            entries.append(TranscriptEntry(event.id, at, "system", system_lines[event.type_name]))
    return entries
