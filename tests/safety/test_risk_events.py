"""Risk turns → rows in the application database, written off the reply path, surviving outages."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from datetime import timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.db import session_scope, upgrade
from bot.safety.models import RiskEvent, utc_now
from bot.safety.risk_events import RiskTurn, record, risk_turns
from bot.safety.tracker_store import RiskRecordingTrackerStore
from tests.db_urls import migrated_database

ROOT = Path(__file__).resolve().parents[2]


def user(text: str, level: str, message_id: str, means_adjacent: bool = False) -> UserUttered:
    safety = {"level": level, "score": 1.0 if level != "none" else 0.1, "reasons": [f"rule:test:{text}"],
              "categories": ["test"] if level != "none" else [], "means_adjacent": means_adjacent}
    intent = {"name": "risk_acute" if level == "acute" else "greet", "confidence": 1.0}
    return UserUttered(text, intent, [], {"intent": intent, "entities": [], "text": text, "safety": safety},
                       message_id=message_id)


def conversation() -> List[Any]:
    return [
        user("hello", "none", "m1"),
        ActionExecuted("utter_greet"),
        user("I want to hurt myself", "acute", "m2"),
        ActionExecuted("utter_risk_acute"),
        user("where can I buy pesticides", "none", "m3", means_adjacent=True),
        ActionExecuted("utter_risk_acute"),
        user("tallest bridge near me", "none", "m4", means_adjacent=True),
        ActionExecuted("utter_means_question_no_context"),
    ]


def serialized(events: List[Any]) -> List[Dict[str, Any]]:
    return [event.as_dict() for event in events]


def test_risk_turns_are_risk_messages_and_sticky_crisis_replies() -> None:
    turns = risk_turns("c1", serialized(conversation()))
    assert [(t.message_id, t.level) for t in turns] == [("m2", "acute"), ("m3", "acute")]
    assert "means_adjacent" in turns[1].categories
    assert any(reason.startswith("sticky:") for reason in turns[1].reasons)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from migrated_database(request.param, tmp_path, "safetytest")


def stored(url: str) -> List[tuple]:
    with session_scope(url) as session:
        return [(row.conversation_id, row.message_id, row.level) for row in session.query(RiskEvent)]


def test_each_risk_turn_is_recorded_once(database_url: str) -> None:
    turns = risk_turns("c1", serialized(conversation()))
    assert record(turns, database_url) == 2
    assert record(turns, database_url) == 0  # the tracker is saved after every turn: no duplicates
    assert sorted(stored(database_url)) == [("c1", "m2", "acute"), ("c1", "m3", "acute")]


def test_a_recorded_turn_reads_back_like_one_the_orm_wrote(database_url: str) -> None:
    # Turns with a message id go in with one SQL statement that skips duplicates; turns without one
    # (NULLs never conflict) take the ORM after a look-up. Both must give the same row.
    statement = RiskTurn("c9", "m9", "imminent", 0.97, "imminent,self_harm", ["rule:imminent", "p=0.97"])
    looked_up = RiskTurn("c9", None, "concern", 0.5, "third_party", ["rule:third_party"])
    assert record([statement, statement], database_url) == 1
    assert record([looked_up], database_url) == 1
    assert record([looked_up], database_url) == 0
    with session_scope(database_url) as session:
        rows = {row.message_id: row for row in session.query(RiskEvent)}
        for turn in (statement, looked_up):
            row = rows[turn.message_id]
            assert (row.conversation_id, row.level, row.score, row.categories, row.reasons) == (
                turn.conversation_id, turn.level, turn.score, turn.categories, turn.reasons
            )
            created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=timezone.utc)
            assert abs((utc_now() - created).total_seconds()) < 60


def tracker_store(tmp_path: Path, risk_url: str) -> RiskRecordingTrackerStore:
    domain = Domain.load(str(ROOT / "domain.yml"))
    return RiskRecordingTrackerStore(domain=domain, dialect="sqlite", db=str(tmp_path / "tracker.db"),
                                     risk_database_url=risk_url)


def saved_conversation(tmp_path: Path, sender: str) -> tuple[str, RiskRecordingTrackerStore, DialogueStateTracker]:
    """A store on a fresh application database, after saving conversation() (its two risk turns written)."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    upgrade(url)
    store = tracker_store(tmp_path, url)
    tracker = DialogueStateTracker.from_events(sender, conversation())
    asyncio.run(store.save(tracker))
    assert store.last_write is not None and store.last_write.result(timeout=10) == 2
    return url, store, tracker


def test_tracker_store_records_risk_turns_in_the_application_database(tmp_path: Path) -> None:
    url, store, _tracker = saved_conversation(tmp_path, "visitor-1")
    assert sorted(stored(url)) == [("visitor-1", "m2", "acute"), ("visitor-1", "m3", "acute")]
    assert asyncio.run(store.retrieve("visitor-1")) is not None  # the tracker itself is stored too


@pytest.fixture
def hung_postgres_port() -> Iterator[int]:
    """A socket that accepts connections and never answers (a hung database server)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: List[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_a_hung_database_neither_delays_nor_breaks_saving(tmp_path: Path, hung_postgres_port: int) -> None:
    store = tracker_store(tmp_path, f"postgresql://postgres@127.0.0.1:{hung_postgres_port}/nothing")
    tracker = DialogueStateTracker.from_events("visitor-2", conversation())
    started = time.monotonic()
    asyncio.run(store.save(tracker))
    assert time.monotonic() - started < 1.0
    assert store.last_write is not None and store.last_write.result(timeout=30) == 0  # logged, not raised


def test_an_unreachable_database_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = tracker_store(tmp_path, f"sqlite:///{tmp_path / 'no-such-dir' / 'x' / 'app.db'}")
    asyncio.run(store.save(DialogueStateTracker.from_events("visitor-3", conversation())))
    assert store.last_write is not None and store.last_write.result(timeout=10) == 0
    assert "could not record" in caplog.text


def test_stored_turns_are_not_written_again_on_later_saves(tmp_path: Path) -> None:
    url, store, tracker = saved_conversation(tmp_path, "visitor-4")
    first_write = store.last_write
    tracker.update(user("thanks", "none", "m5"))
    asyncio.run(store.save(tracker))  # the next turn: nothing new to record, so no query either
    assert store.last_write is first_write
    tracker.update(user("I want to hurt myself again", "acute", "m6"))
    asyncio.run(store.save(tracker))
    assert store.last_write is not first_write and store.last_write.result(timeout=10) == 1
    assert len(stored(url)) == 3


def test_turns_missed_during_an_outage_are_written_by_the_next_save(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    upgrade(url)
    store = tracker_store(tmp_path, f"sqlite:///{tmp_path / 'no-such-dir' / 'x' / 'app.db'}")
    tracker = DialogueStateTracker.from_events("visitor-5", conversation())
    asyncio.run(store.save(tracker))
    assert store.last_write is not None and store.last_write.result(timeout=10) == 0  # outage
    store.risk_database_url = url  # the database is back
    tracker.update(user("thanks", "none", "m5"))
    asyncio.run(store.save(tracker))
    assert store.last_write.result(timeout=10) == 2
    assert sorted(stored(url)) == [("visitor-5", "m2", "acute"), ("visitor-5", "m3", "acute")]
