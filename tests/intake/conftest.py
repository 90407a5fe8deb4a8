"""Fixtures for intake tests: a migrated database (SQLite and PostgreSQL), a pinned clock, trackers."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from rasa.shared.core.domain import Domain
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.db import engine_for, upgrade
from bot.intake import schedule
from tests.db_urls import postgres_database

ROOT = Path(__file__).resolve().parents[2]
DOMAIN: Dict[str, Any] = Domain.load(str(ROOT / "domain.yml")).as_dict()
# Sunday 22 Nov 2026, 10:00 in New York: the next calls are Monday 8:00, 8:15, 8:30.
NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)
MONDAY_8 = datetime(2026, 11, 23, 13, 0, tzinfo=timezone.utc)


def migrated(url: str) -> str:
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated application database that the actions use (through DATABASE_URL)."""
    if request.param == "sqlite":
        url = migrated(f"sqlite:///{tmp_path / 'app.db'}")
        monkeypatch.setenv("DATABASE_URL", url)
        yield url
        engine_for(url).dispose()
    else:
        for url in postgres_database("intaketest"):
            migrated(url)
            monkeypatch.setenv("DATABASE_URL", url)
            yield url
            engine_for(url).dispose()


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr(schedule, "utc_now", lambda: NOW)
    return NOW


def tracker(
    slots: Dict[str, Any],
    text: str = "",
    set_now: Dict[str, Any] | None = None,
    form: str | None = "intake_form",
    intent: str = "inform",
    sender: str = "intake-test",
) -> Tracker:
    """A tracker as the action server receives it: `set_now` are the slots extracted from this message."""
    current = {**slots, **(set_now or {})}
    events: List[Dict[str, Any]] = [{"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}}]
    events += [{"event": "slot", "name": name, "value": value} for name, value in (set_now or {}).items()]
    latest = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": []}
    return Tracker(
        sender,
        current,
        latest,
        events,
        False,
        None,
        {"name": form} if form else {},
        "action_listen",
    )


def run(action: Action, the_tracker: Tracker) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, the_tracker, DOMAIN))
    return events, dispatcher.messages


def responses(messages: List[Dict[str, Any]]) -> List[str]:
    return [message.get("response") for message in messages]


def slot_events(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {event["name"]: event["value"] for event in events if event.get("event") == "slot"}
