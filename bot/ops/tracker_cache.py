"""Rasa's SQL tracker store with a per-process cache of each conversation's stored rows.

Why: under load, reading a conversation back from SQL (an ORM query with a sub-query, one ORM object per
event) and counting its stored events before each save was ~30% of the Rasa server's CPU (py-spy,
`make bench`). Here the database stays the only source of truth, and each access costs ONE cheap query:

    SELECT count(id), max(id) FROM events WHERE sender_id = ?

When both numbers match the rows this process last read or wrote for that conversation, the cached rows
ARE the stored rows (event ids only grow, and Rasa never deletes events), so no event is read again;
otherwise (another process wrote, or this process restarted) every row is read again once.

What stays exactly as in Rasa's SQLTrackerStore:
- `retrieve` gives the tracker Rasa builds from the JSON text of the latest session's rows, with Rasa's
  own filter (rows whose timestamp is at least the newest `session_started` timestamp, ordered by id) and
  Rasa's own `DialogueStateTracker.from_dict`. That build (JSON parsing, then a replay of every event)
  was ~10% of the server's CPU under load, ~1 ms for a 50-event conversation, so the cache also keeps
  the tracker itself (a snapshot) and hands out a copy of it (~30 µs; see `snapshot_after_save`).
  Every call gives a new tracker, so a turn that fails before saving leaves nothing of its own behind.
- `save` inserts the tracker's events after as many as the latest session already has in the database
  (Rasa's rule), and the cache learns the new rows only after the commit succeeded.
- With an event broker, `save` publishes the same events Rasa's `stream_events` would: the tracker's
  events after the ones the stored latest session holds. Rasa finds that number by reading the whole
  tracker back (every row parsed and replayed) before each save; here it is the row count `save` has
  already read, so production saves no longer build the conversation twice.

Queries run on SQLAlchemy Core connections (Rasa's store opens an ORM session for each; a Core connection
costs under half as much per statement), and a save's new rows go in as one executemany.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event, SessionStarted, deserialise_events
from rasa.shared.core.slots import Slot
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

from bot.ops.driver_sql import DriverStatement
from bot.ops.state_cache import carry_progress

logger = logging.getLogger(__name__)

CACHE_SIZE_ENV = "TRACKER_CACHE_CONVERSATIONS"
# "1": every tracker copied from a snapshot is also built from the rows and compared (tests; twice the work).
VERIFY_ENV = "TRACKER_CACHE_VERIFY"
SNAPSHOT_DIFFERS = "tracker snapshot differs from the stored rows"
# The columns each save fills, in the order of the values it builds (Rasa's `events` table).
INSERTED_COLUMNS = ("sender_id", "type_name", "timestamp", "intent_name", "action_name", "data")
DEFAULT_CACHE_SIZE = 500  # conversations; bounds the memory (a long conversation is a few hundred KB of JSON)


@dataclass(frozen=True)
class StoredRow:
    """One row of Rasa's `events` table, as stored (`id` is None for rows this process inserted)."""

    id: int | None
    type_name: str
    timestamp: float | None
    data: str


Stamp = Tuple[int, int | None]  # (count(id), max(id)) of a conversation's rows


@dataclass(frozen=True)
class StoredConversation:
    """Every stored row of one conversation (all sessions), in id order, and the stamp of that state.

    `tracker`, when known, is the tracker Rasa's `from_dict` builds from the latest session's rows: only
    read through copies, never changed.
    """

    rows: Sequence[StoredRow]
    stamp: Stamp
    tracker: DialogueStateTracker | None = None


def latest_session(rows: Sequence[StoredRow]) -> List[StoredRow]:
    """The rows Rasa's SQL store reads back for a tracker, computed the way its SQL query does.

    Rasa keeps rows whose timestamp is >= the newest `session_started` timestamp (NULL compares as
    false), or every row when there is no such timestamp.
    """
    starts = [row.timestamp for row in rows if row.type_name == SessionStarted.type_name and row.timestamp is not None]
    if not starts:
        return list(rows)
    newest = max(starts)
    return [row for row in rows if row.timestamp is not None and row.timestamp >= newest]


def snapshot_after_save(
    tracker: DialogueStateTracker,
    before: StoredConversation,
    latest_rows: Sequence[StoredRow],
    added: Sequence[StoredRow],
    slots: Sequence[Slot],
) -> DialogueStateTracker | None:
    """The tracker Rasa would now build from the stored rows, made from the previous snapshot, or None.

    Rasa's build parses every row's JSON and replays every event from the first. The snapshot is instead
    the previous one's copy with only the new rows parsed and replayed onto it: the same events (parsed
    from the same JSON text, so even tuples come back as lists) applied in the same order to the same
    state. That holds only when the saved tracker continues the previous snapshot (its older events
    are the very event objects of the snapshot, so they are the stored ones) and the database's latest
    session is all of the tracker's events (a session start among the new events shortens it). A tracker
    made some other way (say, events replaced through the HTTP API, of which Rasa's rule stores only the
    ones beyond the stored count) gets no snapshot: the next read builds from the rows. When the
    latest session began in this save (a new conversation, a session start), the snapshot is Rasa's
    own build from those rows, all of them new.
    """
    if type(tracker) is not DialogueStateTracker or tracker._max_event_history is not None:
        return None
    # Rows are in id order and the new ones come last: the latest session began in this save when its
    # first row is new.
    if latest_rows and any(latest_rows[0] is row for row in added):
        built = rasas_build(tracker.sender_id, latest_rows, slots)
        if built is not None and len(built.events) == len(tracker.events):  # every event is in the snapshot
            carry_progress(tracker, built)
        return built
    events = tracker.events
    kept = len(events) - len(added)
    if len(latest_rows) != len(events):
        return None
    new_events = _events_of(added)
    if new_events is None:
        return None
    previous = before.tracker
    if previous is None or kept != len(previous.events):
        return None
    older = itertools.islice(events, kept)
    if not all(mine is theirs for mine, theirs in zip(older, previous.events, strict=True)):
        return None
    snapshot = previous.copy()
    for event in new_events:
        snapshot.update(event)
    carry_progress(tracker, snapshot)  # the policies' states need not start from the first event again
    return snapshot


def _events_of(rows: Sequence[StoredRow]) -> List[Event] | None:
    """The rows' events as Rasa's build parses them; None when Rasa's build would skip one of them."""
    events = deserialise_events([json.loads(row.data) for row in rows])
    return events if len(events) == len(rows) else None


def rasas_build(sender_id: str, rows: Sequence[StoredRow], slots: Sequence[Slot]) -> DialogueStateTracker | None:
    """The tracker Rasa's SQL store builds from these rows (None without rows, as Rasa's store answers)."""
    events = [json.loads(row.data) for row in rows]
    return DialogueStateTracker.from_dict(sender_id, events, slots) if events else None


def _event_or_placeholder(tracker: DialogueStateTracker, event: Any) -> Any:
    """Which of the tracker's events `event` is, or (an empty placeholder) its content without the time."""
    for index, known in enumerate(tracker.events):
        if known is event:
            return index
    return None if event is None else {key: value for key, value in event.as_dict().items() if key != "timestamp"}


def tracker_fingerprint(tracker: DialogueStateTracker, domain: Domain | None) -> Dict[str, Any]:
    """Everything a tracker's users read from it (with `domain`: also the policies' states), to compare two."""
    return {
        "sender_id": tracker.sender_id,
        "events": [event.as_dict() for event in tracker.events],
        "slots": {name: (type(slot), slot.value, slot._has_been_set) for name, slot in tracker.slots.items()},
        "latest_message": _event_or_placeholder(tracker, tracker.latest_message),
        "latest_bot_utterance": _event_or_placeholder(tracker, tracker.latest_bot_utterance),
        "latest_action": tracker.latest_action,
        "followup_action": tracker.followup_action,
        "active_loop": tracker.active_loop,
        "paused": tracker._paused,
        "max_event_history": tracker._max_event_history,
        "state": tracker.current_state(EventVerbosity.AFTER_RESTART),
        "applied_events": [event.as_dict() for event in tracker.applied_events()],
        "past_states": tracker.past_states(domain) if domain is not None else None,
    }


def cache_size_from_env() -> int:
    raw = os.environ.get(CACHE_SIZE_ENV, "")
    if not raw:
        return DEFAULT_CACHE_SIZE
    if not raw.isdigit():
        raise SystemExit(f"{CACHE_SIZE_ENV}={raw!r} must be a whole number of conversations (0 turns the cache off)")
    return int(raw)


class CachedSQLTrackerStore(SQLTrackerStore):
    def __init__(self, *args: Any, cache_conversations: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keep_sqlite_connections_open()
        self.cache_conversations = cache_size_from_env() if cache_conversations is None else cache_conversations
        self._cache: OrderedDict[str, StoredConversation] = OrderedDict()
        table = self.SQLEvent.__table__
        self._stamp_query = sa.select(sa.func.count(table.c.id), sa.func.max(table.c.id)).where(
            table.c.sender_id == sa.bindparam("sender_id")
        )
        self._rows_query = (
            sa.select(table.c.id, table.c.type_name, table.c.timestamp, table.c.data)
            .where(table.c.sender_id == sa.bindparam("sender_id"))
            .order_by(table.c.id)
        )
        self._insert = table.insert()
        # The per-message statements on the driver's cursor (bot/ops/driver_sql.py). Rows are inserted that
        # way on SQLite only: SQLAlchemy sends PostgreSQL a many-row insert in one round trip.
        dialect = self.engine.dialect  # type: ignore[has-type]  # Rasa leaves it unannotated
        self._stamp_on_driver = DriverStatement(self._stamp_query, dialect)
        self._insert_on_driver = (
            DriverStatement(self._insert, dialect, column_keys=list(INSERTED_COLUMNS))
            if dialect.name == "sqlite" else None
        )
        with self.session_scope():  # Rasa's check that a configured PostgreSQL schema exists, once
            pass
        # Counters for tests and the benchmark: how often the cache answered, how often rows were read,
        # how often a tracker was built from rows (not copied from a snapshot).
        self.hits = 0
        self.reloads = 0
        self.builds = 0
        self.verified = 0
        self.verify_snapshots = os.environ.get(VERIFY_ENV) == "1"

    def _keep_sqlite_connections_open(self) -> None:
        """SQLite: reuse connections instead of opening the file for every query.

        SQLAlchemy 1.4 opens and closes a new SQLite connection per session for a file database; that was
        a quarter of a save's time. A pooled connection is rolled back when returned, so it holds no read
        transaction between turns and other processes' commits stay visible.
        """
        rasa_engine: sa.engine.Engine = self.engine  # type: ignore[has-type]  # Rasa leaves it unannotated
        if rasa_engine.dialect.name != "sqlite":
            return  # PostgreSQL already pools its connections
        url = rasa_engine.url
        rasa_engine.dispose()
        self.engine = sa.create_engine(
            url, poolclass=QueuePool, pool_size=2, connect_args={"check_same_thread": False}
        )
        self.sessionmaker = sessionmaker(bind=self.engine)

    def _stored(self, connection: sa.engine.Connection, sender_id: str) -> StoredConversation:
        """The conversation's stored rows: from the cache when the database's stamp matches it."""
        count, max_id = self._stamp_on_driver.one(connection, {"sender_id": sender_id})
        cached = self._cache.get(sender_id)
        if cached is not None and cached.stamp == (count, max_id):
            self.hits += 1
            self._cache.move_to_end(sender_id)
            return cached
        self.reloads += 1
        rows = connection.execute(self._rows_query, {"sender_id": sender_id}).all()
        stored_rows = tuple(StoredRow(row.id, row.type_name, row.timestamp, row.data) for row in rows)
        stored = StoredConversation(stored_rows, (len(stored_rows), stored_rows[-1].id if stored_rows else None))
        self._remember(sender_id, stored)
        return stored

    def _remember(self, sender_id: str, stored: StoredConversation) -> None:
        if self.cache_conversations <= 0:
            return
        self._cache[sender_id] = stored
        self._cache.move_to_end(sender_id)
        while len(self._cache) > self.cache_conversations:
            self._cache.popitem(last=False)

    def forget(self, sender_id: str) -> None:
        self._cache.pop(sender_id, None)

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        with self.engine.connect() as connection:
            stored = self._stored(connection, sender_id)
        if stored.tracker is not None:
            return self._verify(sender_id, stored) if self.verify_snapshots else stored.tracker.copy()
        built = self._built(sender_id, stored)
        if built is None:
            return None
        self.builds += 1
        if self._cache.get(sender_id) is stored:  # still what the database holds: keep the build
            self._remember(sender_id, dataclasses.replace(stored, tracker=built))
        return built.copy()

    def _built(self, sender_id: str, stored: StoredConversation) -> DialogueStateTracker | None:
        """Rasa's own build of the tracker from the latest session's rows."""
        return rasas_build(sender_id, latest_session(stored.rows), self.domain.slots) if self.domain else None

    def _verify(self, sender_id: str, stored: StoredConversation) -> DialogueStateTracker | None:
        """Test mode (VERIFY_ENV): the snapshot's copy must be what Rasa builds from the rows, in every part.

        A difference is logged (tests look for SNAPSHOT_DIFFERS in the log) and the build is used instead.
        """
        assert stored.tracker is not None
        mine = stored.tracker.copy()
        built = self._built(sender_id, stored)
        theirs = tracker_fingerprint(built, self.domain) if built is not None else {}
        ours = tracker_fingerprint(mine, self.domain)
        different = sorted(key for key in ours if ours[key] != theirs.get(key))
        if different:
            logger.error("%s in: %s", SNAPSHOT_DIFFERS, ", ".join(different))
            return built
        self.verified += 1
        return mine

    async def save(self, tracker: DialogueStateTracker) -> None:
        sender_id = tracker.sender_id
        with self.engine.begin() as connection:  # committed when the block ends, rolled back if it raises
            stored = self._stored(connection, sender_id)
            already = len(latest_session(stored.rows))
            new_events = list(itertools.islice(tracker.events, already, len(tracker.events)))
            if self.event_broker is not None:  # before writing, as Rasa's save does
                await self._stream_new_events(self.event_broker, new_events, sender_id)
            added: List[StoredRow] = []
            values: List[dict[str, Any]] = []
            count, max_id, expected = 0, None, -1
            for event in new_events:
                data = event.as_dict()
                text = json.dumps(data)
                timestamp = data.get("timestamp")
                values.append({
                    "sender_id": sender_id,
                    "type_name": event.type_name,
                    "timestamp": timestamp,
                    "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
                    "action_name": data.get("name"),
                    "data": text,
                })
                added.append(StoredRow(None, event.type_name, timestamp, text))
            if values:
                if self._insert_on_driver is not None:
                    self._insert_on_driver.execute_many(connection, values)
                else:
                    connection.execute(self._insert, values)
                # The ids of the new rows are not needed, only the conversation's new stamp. When the count
                # is what this save expects, no other process added rows, so max(id) is this save's last row.
                count, max_id = self._stamp_on_driver.one(connection, {"sender_id": sender_id})
                expected = len(stored.rows) + len(added)
        # Only now, after the commit: a failed commit leaves the cache as the database is.
        if added:
            if count == expected:
                rows = (*stored.rows, *added)
                snapshot = None
                if self.domain:
                    snapshot = snapshot_after_save(tracker, stored, latest_session(rows), added, self.domain.slots)
                self._remember(sender_id, StoredConversation(rows, (count, max_id), snapshot))
            else:
                self.forget(sender_id)
        logger.debug("Tracker with sender_id '%s' stored to database", sender_id)
