from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.office import ActionOfficeStatus
from bot import settings


def empty_tracker() -> Tracker:
    return Tracker("visitor-1", {}, {}, [], False, None, {}, "action_listen")


@pytest.mark.parametrize(
    ("utc_moment", "expected"),
    [
        ("2026-11-23T15:00:00+00:00", "utter_office_open"),  # Monday 10:00 in New York
        ("2026-11-22T15:00:00+00:00", "utter_office_closed"),  # Sunday
        ("2026-11-24T03:00:00+00:00", "utter_office_closed"),  # Monday 22:00 in New York
    ],
)
def test_office_status_follows_the_practice_hours(
    monkeypatch: pytest.MonkeyPatch, utc_moment: str, expected: str
) -> None:
    facts = settings.practice()
    fixed = datetime.fromisoformat(utc_moment)
    monkeypatch.setattr(type(facts), "local_now", lambda self, now=None: fixed.astimezone(self.zone))
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionOfficeStatus().run(dispatcher, empty_tracker(), {}))
    assert events == []
    assert [message["response"] for message in dispatcher.messages] == [expected]
