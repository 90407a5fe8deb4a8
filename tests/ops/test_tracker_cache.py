"""The cached SQL tracker store reads back exactly what Rasa's own SQL store reads, in every situation.

Each test compares with `SQLTrackerStore` (Rasa's, uncached) on the same database, on SQLite and on
PostgreSQL; a second store instance on the same database plays the part of a second Rasa process.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest
import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.ops.tracker_cache import (
    CACHE_SIZE_ENV,
    DEFAULT_CACHE_SIZE,
    SNAPSHOT_DIFFERS,
    VERIFY_ENV,
    CachedSQLTrackerStore,
    StoredRow,
    cache_size_from_env,
    latest_session,
    tracker_fingerprint,
)
from tests.db_urls import postgres_database

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet, ask]
slots:
  topic:
    type: text
    influence_conversation: false
    mappings: [{type: custom}]
responses:
  utter_greet: [{text: "hi"}]
"""
)
StoreFactory = Callable[..., SQLTrackerStore]


def store_kwargs_for(url: str) -> Dict[str, Any]:
    parsed = sa.engine.make_url(url)
    if parsed.drivername.startswith("sqlite"):
        return {"dialect": "sqlite", "db": parsed.database}
    return {"dialect": "postgresql", "host": parsed.host, "port": parsed.port, "db": parsed.database,
            "username": parsed.username}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tracker.db'}"
    else:
        yield from postgres_database("trackercache")


@pytest.fixture
def make_store(database_url: str) -> Iterator[StoreFactory]:
    """A new store on the shared database per call (each call is like another Rasa process)."""
    made: List[SQLTrackerStore] = []

    def make(cls: type = CachedSQLTrackerStore, **extra: Any) -> SQLTrackerStore:
        store = cls(domain=DOMAIN, **store_kwargs_for(database_url), **extra)
        made.append(store)
        return store

    yield make
    for store in made:
        store.engine.dispose()


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def turn(store: SQLTrackerStore, sender: str, text: str, at: float) -> DialogueStateTracker:
    """One visitor turn: read the tracker (as Rasa's processor asks for it), add a message and the reply, save."""
    tracker = run(store.get_or_create_tracker(sender, append_action_listen=False))
    for event in (UserUttered(text, {"name": "greet", "confidence": 1.0}, timestamp=at),
                  ActionExecuted("utter_greet", timestamp=at + 0.1), BotUttered(text=f"re: {text}", timestamp=at + 0.2),
                  ActionExecuted("action_listen", timestamp=at + 0.3)):
        tracker.update(event)
    run(store.save(tracker))
    return tracker


def events_of(tracker: DialogueStateTracker | None) -> List[Dict[str, Any]]:
    return [event.as_dict() for event in tracker.events] if tracker else []


def as_rasa_reads_it(make_store: StoreFactory, sender: str) -> List[Dict[str, Any]]:
    return events_of(run(make_store(SQLTrackerStore).retrieve(sender)))


def user_texts(tracker: DialogueStateTracker | None) -> List[str]:
    return [str(event.text) for event in (tracker.events if tracker else []) if isinstance(event, UserUttered)]


def test_reads_back_what_rasa_reads_and_answers_from_the_cache(make_store: StoreFactory) -> None:
    store = make_store()
    assert isinstance(store, CachedSQLTrackerStore)
    for index in range(4):
        turn(store, "v1", f"message {index}", at=1000.0 + index)
    reloads_before = store.reloads
    mine = run(store.retrieve("v1"))
    assert events_of(mine) == as_rasa_reads_it(make_store, "v1")
    assert user_texts(mine) == [f"message {index}" for index in range(4)]
    assert store.reloads == reloads_before and store.hits > 0  # served from the cache, not read again
    assert run(store.retrieve("nobody")) is None


def test_a_second_process_writing_is_seen_by_the_first(make_store: StoreFactory) -> None:
    first, second = make_store(), make_store()
    turn(first, "v2", "one", at=2000.0)
    turn(second, "v2", "two", at=2001.0)  # the other process continues the same conversation
    turn(first, "v2", "three", at=2002.0)  # the first process's cache is stale here: it must notice
    turn(second, "v2", "four", at=2003.0)
    expected = ["one", "two", "three", "four"]
    assert user_texts(run(first.retrieve("v2"))) == expected
    assert user_texts(run(second.retrieve("v2"))) == expected
    assert events_of(run(first.retrieve("v2"))) == as_rasa_reads_it(make_store, "v2")


def test_a_turn_that_failed_before_saving_leaves_nothing_behind(make_store: StoreFactory) -> None:
    store = make_store()
    turn(store, "v3", "saved", at=3000.0)
    tracker = run(store.retrieve("v3"))
    assert tracker is not None
    tracker.update(UserUttered("never saved", {"name": "greet", "confidence": 1.0}, timestamp=3001.0))
    # ... the turn raises here, before save: the next turn must not see that message.
    assert user_texts(run(store.retrieve("v3"))) == ["saved"]
    turn(store, "v3", "next", at=3002.0)
    assert user_texts(run(store.retrieve("v3"))) == ["saved", "next"]
    assert events_of(run(store.retrieve("v3"))) == as_rasa_reads_it(make_store, "v3")


def test_a_failed_commit_does_not_reach_the_cache(make_store: StoreFactory) -> None:
    store = make_store()
    turn(store, "v4", "saved", at=4000.0)

    def refuse(_connection: sa.engine.Connection) -> None:  # runs as the store commits, ORM or Core alike
        raise sa.exc.OperationalError("COMMIT", {}, Exception("database went away"))

    sa.event.listen(store.engine, "commit", refuse)
    with pytest.raises(sa.exc.OperationalError):
        turn(store, "v4", "lost", at=4001.0)
    sa.event.remove(store.engine, "commit", refuse)
    assert user_texts(run(store.retrieve("v4"))) == ["saved"]
    turn(store, "v4", "again", at=4002.0)
    assert events_of(run(store.retrieve("v4"))) == as_rasa_reads_it(make_store, "v4")


def test_session_restarts_read_back_only_the_new_session(make_store: StoreFactory) -> None:
    store = make_store()
    turn(store, "v5", "old session", at=5000.0)
    tracker = run(store.retrieve("v5"))
    assert tracker is not None
    # What Rasa's session start adds to the in-memory tracker after a session expired.
    for event in (ActionExecuted("action_session_start", timestamp=9000.0), SessionStarted(timestamp=9000.1),
                  SlotSet("topic", "kept", timestamp=9000.2), ActionExecuted("action_listen", timestamp=9000.3),
                  UserUttered("new session", {"name": "ask", "confidence": 1.0}, timestamp=9001.0)):
        tracker.update(event)
    run(store.save(tracker))
    mine = run(store.retrieve("v5"))
    assert user_texts(mine) == ["new session"]
    assert events_of(mine) == as_rasa_reads_it(make_store, "v5")
    turn(store, "v5", "and more", at=9002.0)  # saving after the restart counts only the new session
    assert events_of(run(store.retrieve("v5"))) == as_rasa_reads_it(make_store, "v5")
    assert user_texts(run(make_store().retrieve("v5"))) == ["new session", "and more"]


class RecordingBroker(EventBroker):
    """Keeps what a store publishes; `during_publish` runs while the save's transaction is open."""

    def __init__(self) -> None:
        self.published: List[Dict[str, Any]] = []
        self.during_publish: Callable[[], None] | None = None

    def publish(self, event: Dict[str, Any]) -> None:
        self.published.append(event)
        if self.during_publish is not None:
            self.during_publish()


def test_publishes_exactly_the_events_rasas_store_publishes(make_store: StoreFactory) -> None:
    """Rasa's store reads the whole tracker back before each save to find the new events; ours must publish
    the same ones from the rows it already read, across the cache, another process and a session restart."""
    theirs, ours = RecordingBroker(), RecordingBroker()
    rasa_store, mine = make_store(SQLTrackerStore, event_broker=theirs), make_store(event_broker=ours)
    second_process = make_store(event_broker=ours)
    for index in range(3):
        turn(rasa_store, "b-rasa", f"message {index}", at=8000.0 + index)
        turn(mine, "b-mine", f"message {index}", at=8000.0 + index)
    turn(second_process, "b-mine", "from another process", at=8003.0)
    turn(rasa_store, "b-rasa", "from another process", at=8003.0)
    turn(mine, "b-mine", "after it", at=8004.0)
    turn(rasa_store, "b-rasa", "after it", at=8004.0)
    for store, sender in ((rasa_store, "b-rasa"), (mine, "b-mine")):
        tracker = run(store.retrieve(sender))
        assert tracker is not None
        for event in (ActionExecuted("action_session_start", timestamp=9000.0), SessionStarted(timestamp=9000.1),
                      UserUttered("new session", {"name": "ask", "confidence": 1.0}, timestamp=9001.0)):
            tracker.update(event)
        run(store.save(tracker))
    def comparable(published: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        return [{key: value for key, value in event.items() if key not in ("sender_id", "timestamp")}
                for event in published]

    assert comparable(ours.published) == comparable(theirs.published)
    assert {event["sender_id"] for event in ours.published} == {"b-mine"}
    assert len(theirs.published) == 5 * 4 + 3  # 5 turns of 4 events, the restart


def test_rows_another_process_adds_during_a_save_make_the_cache_read_again(make_store: StoreFactory) -> None:
    broker = RecordingBroker()
    store, other = make_store(event_broker=broker), make_store()
    turn(store, "v8", "first", at=8100.0)
    # Normally the lock store keeps a second process out; if it writes anyway, the new stamp does not add up.
    sneaked = UserUttered("sneaked in", {"name": "greet", "confidence": 1.0}, timestamp=8101.0)

    def write_from_the_other_process() -> None:
        broker.during_publish = None
        with other.engine.begin() as connection:
            connection.execute(other.SQLEvent.__table__.insert(), {
                "sender_id": "v8", "type_name": "user", "timestamp": 8101.0, "intent_name": "greet",
                "action_name": None, "data": json.dumps(sneaked.as_dict()),
            })

    broker.during_publish = write_from_the_other_process
    turn(store, "v8", "second", at=8102.0)
    reloads_before = store.reloads
    assert events_of(run(store.retrieve("v8"))) == as_rasa_reads_it(make_store, "v8")
    assert store.reloads == reloads_before + 1
    assert "sneaked in" in user_texts(run(store.retrieve("v8")))


def test_the_cache_keeps_at_most_the_configured_number_of_conversations(make_store: StoreFactory) -> None:
    store = make_store(cache_conversations=2)
    for index in range(5):
        turn(store, f"lru-{index}", "hello", at=6000.0 + index)
    assert isinstance(store, CachedSQLTrackerStore) and len(store._cache) == 2
    assert user_texts(run(store.retrieve("lru-0"))) == ["hello"]  # evicted ones are read from the database


def _turns_then_killed(kwargs: Dict[str, Any], sender: str) -> None:
    store = CachedSQLTrackerStore(domain=DOMAIN, **kwargs)
    for index in range(3):
        turn(store, sender, f"before the kill {index}", at=7000.0 + index)
    os.kill(os.getpid(), signal.SIGKILL)


def test_history_survives_a_killed_process(database_url: str, make_store: StoreFactory) -> None:
    process = multiprocessing.get_context("spawn").Process(
        target=_turns_then_killed, args=(store_kwargs_for(database_url), "v7")
    )
    process.start()
    process.join(timeout=120)
    assert process.exitcode == -signal.SIGKILL
    restarted = make_store()
    assert user_texts(run(restarted.retrieve("v7"))) == [f"before the kill {index}" for index in range(3)]
    turn(restarted, "v7", "after the restart", at=7010.0)
    assert events_of(run(restarted.retrieve("v7"))) == as_rasa_reads_it(make_store, "v7")


def row(row_id: int, type_name: str, timestamp: float | None) -> StoredRow:
    return StoredRow(row_id, type_name, timestamp, "{}")


def test_latest_session_filter_matches_rasas_sql() -> None:
    start = SessionStarted.type_name
    rows = [row(1, "user", 1.0), row(2, start, 2.0), row(3, "user", 3.0), row(4, start, 4.0),
            row(5, "user", None), row(6, "user", 4.0), row(7, "bot", 3.5)]
    # timestamp >= newest session start; NULL never qualifies; order by id.
    assert [r.id for r in latest_session(rows)] == [4, 6]
    assert [r.id for r in latest_session(rows[:1])] == [1]  # no session start: everything
    no_timestamps = [row(1, start, None), row(2, "user", None)]
    assert [r.id for r in latest_session(no_timestamps)] == [1, 2]



def test_cache_size_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CACHE_SIZE_ENV, raising=False)
    assert cache_size_from_env() == DEFAULT_CACHE_SIZE
    monkeypatch.setenv(CACHE_SIZE_ENV, "0")
    assert cache_size_from_env() == 0
    monkeypatch.setenv(CACHE_SIZE_ENV, "lots")
    with pytest.raises(SystemExit):
        cache_size_from_env()


def test_without_a_cache_every_read_comes_from_the_database(make_store: StoreFactory) -> None:
    store = make_store(cache_conversations=0)
    turn(store, "v8", "one", at=8000.0)
    turn(store, "v8", "two", at=8001.0)
    assert isinstance(store, CachedSQLTrackerStore) and store.hits == 0 and not store._cache
    assert events_of(run(store.retrieve("v8"))) == as_rasa_reads_it(make_store, "v8")


# --- Snapshots: the tracker kept after a save, copied on each read instead of built from the rows ---

FORM_DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet, ask, book]
slots:
  topic:
    type: text
    mappings: [{type: custom}]
  count:
    type: float
    mappings: [{type: custom}]
  tags:
    type: list
    mappings: [{type: custom}]
  requested_slot:
    type: text
    influence_conversation: false
    mappings: [{type: custom}]
forms:
  booking_form:
    required_slots: [topic]
responses:
  utter_greet: [{text: "hi"}]
"""
)


def rasas_build(database_url: str, sender: str, domain: Domain) -> DialogueStateTracker | None:
    store = SQLTrackerStore(domain=domain, **store_kwargs_for(database_url))
    try:
        return run(store.retrieve(sender))
    finally:
        store.engine.dispose()


def varied_turn(store: SQLTrackerStore, sender: str, index: int) -> None:
    """A turn with slots of several types (lists, floats, tuples that JSON turns into lists) and a form."""
    at = 20_000.0 + 10 * index
    tracker = run(store.get_or_create_tracker(sender, append_action_listen=False))
    parse = {"name": "book", "confidence": 0.9, "tokens": [(0, 4), (5, 9)]}
    events = [UserUttered(f"turn {index}", parse, timestamp=at), SlotSet("count", float(index), timestamp=at + 0.1)]
    if index == 1:
        events += [ActiveLoop("booking_form", timestamp=at + 0.2),
                   SlotSet("requested_slot", "topic", timestamp=at + 0.3)]
    if index == 3:
        events += [SlotSet("topic", "dbt", timestamp=at + 0.2), ActiveLoop(None, timestamp=at + 0.3),
                   SlotSet("tags", ["a", ("b", 2)], timestamp=at + 0.4)]
    events += [ActionExecuted("utter_greet", timestamp=at + 0.5), BotUttered(f"re {index}", timestamp=at + 0.6),
               ActionExecuted("action_listen", timestamp=at + 0.7)]
    for event in events:
        tracker.update(event)
    run(store.save(tracker))


def test_reads_copy_the_snapshot_and_equal_rasas_build_in_every_part(database_url: str) -> None:
    store = CachedSQLTrackerStore(domain=FORM_DOMAIN, **store_kwargs_for(database_url))
    try:
        for index in range(5):
            varied_turn(store, "snap-1", index)
            mine = run(store.retrieve("snap-1"))
            theirs = rasas_build(database_url, "snap-1", FORM_DOMAIN)
            assert mine is not None and theirs is not None
            assert tracker_fingerprint(mine, FORM_DOMAIN) == tracker_fingerprint(theirs, FORM_DOMAIN)
        # The conversation's first save already leaves a snapshot: no read ever built from the rows.
        assert store.builds == 0
        assert mine.active_loop_name is None and mine.get_slot("tags") == ["a", ["b", 2]]
    finally:
        store.engine.dispose()


def test_changing_a_read_tracker_does_not_change_the_next_read(make_store: StoreFactory) -> None:
    store = make_store()
    turn(store, "snap-2", "one", at=21_000.0)
    first = run(store.retrieve("snap-2"))
    assert first is not None
    first.update(SlotSet("topic", "changed in memory", timestamp=21_001.0))
    first.slots["topic"].value = "changed directly"
    second = run(store.retrieve("snap-2"))
    assert second is not None and second.get_slot("topic") is None
    assert events_of(second) == as_rasa_reads_it(make_store, "snap-2")


def test_a_tracker_that_does_not_continue_the_snapshot_gets_none(make_store: StoreFactory) -> None:
    """Events replaced through Rasa's HTTP API: Rasa's rule stores only those beyond the stored count, so
    the tracker in memory is not what the database holds, and the next read must build from the rows."""
    store = make_store()
    assert isinstance(store, CachedSQLTrackerStore)
    turn(store, "snap-3", "stored first", at=22_000.0)
    replaced = DialogueStateTracker.from_events("snap-3", [
        UserUttered(f"replacement {index}", {"name": "ask", "confidence": 1.0}, timestamp=22_001.0 + index)
        for index in range(6)
    ], DOMAIN.slots)
    run(store.save(replaced))
    builds_before = store.builds
    mine = run(store.retrieve("snap-3"))
    assert store.builds == builds_before + 1
    assert events_of(mine) == as_rasa_reads_it(make_store, "snap-3")


def test_a_session_start_in_a_save_leaves_the_new_session_as_the_snapshot(make_store: StoreFactory) -> None:
    store = make_store()
    assert isinstance(store, CachedSQLTrackerStore)
    turn(store, "snap-4", "old session", at=23_000.0)
    tracker = run(store.retrieve("snap-4"))
    assert tracker is not None
    for event in (ActionExecuted("action_session_start", timestamp=29_000.0), SessionStarted(timestamp=29_000.1),
                  ActionExecuted("action_listen", timestamp=29_000.3),
                  UserUttered("new session", {"name": "ask", "confidence": 1.0}, timestamp=29_001.0)):
        tracker.update(event)
    builds_before = store.builds
    run(store.save(tracker))
    mine = run(store.retrieve("snap-4"))
    assert store.builds == builds_before and user_texts(mine) == ["new session"]
    assert events_of(mine) == as_rasa_reads_it(make_store, "snap-4")


def test_verification_logs_a_differing_snapshot_and_answers_with_rasas_build(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(VERIFY_ENV, "1")
    store = make_store()
    assert isinstance(store, CachedSQLTrackerStore) and store.verify_snapshots
    turn(store, "snap-5", "one", at=24_000.0)
    turn(store, "snap-5", "two", at=24_001.0)
    assert store.verified == 1  # the second turn's read
    snapshot = store._cache["snap-5"].tracker
    assert snapshot is not None
    snapshot.update(SlotSet("topic", "not in the database", timestamp=24_002.0))  # a broken snapshot
    mine = run(store.retrieve("snap-5"))
    assert SNAPSHOT_DIFFERS in caplog.text
    assert events_of(mine) == as_rasa_reads_it(make_store, "snap-5")
