"""SQL tracker store that also records risk turns in the application database, off the reply path.

Configured in endpoints.yml (`tracker_store: type: bot.safety.tracker_store.RiskRecordingTrackerStore`).
Why here and not in an action: the crisis reply must never wait for the action server. Why in a
background thread: Rasa saves the tracker BEFORE the REST channel answers, so a slow or unreachable
application database would otherwise delay the crisis reply. Every database error is caught and
logged; the reply never depends on this record.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from rasa.shared.core.trackers import DialogueStateTracker

from bot.ops.tracker_cache import CachedSQLTrackerStore
from bot.safety.risk_events import record, risk_turns
from bot.settings import runtime

logger = logging.getLogger(__name__)
MAX_REMEMBERED_TURNS = 100_000


class RiskRecordingTrackerStore(CachedSQLTrackerStore):  # Rasa's SQL store + a per-process cache
    def __init__(self, *args: Any, risk_database_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.risk_database_url = risk_database_url or runtime().database_url
        # One worker: records are written in order, and an outage can't pile up threads.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="risk-events")
        self.last_write: Future | None = None
        # Turns this process has seen stored: a conversation's later saves do not query them again
        # (that was ~12% of the server's CPU under load). Turns not known stored are sent on every save,
        # so after an outage they are still written by the next save.
        self._stored_turns: set[tuple[str, str | None]] = set()

    async def save(self, tracker: DialogueStateTracker) -> None:
        await super().save(tracker)
        try:
            turns = risk_turns(tracker.sender_id, [event.as_dict() for event in tracker.events])
        except Exception:  # a record must never break the conversation
            logger.exception("could not read risk turns from the tracker")
            return
        pending = [turn for turn in turns if (turn.conversation_id, turn.message_id) not in self._stored_turns]
        if pending:
            self.last_write = self._writer.submit(self._write, pending)

    def _write(self, turns: list) -> int:
        try:
            added = record(turns, self.risk_database_url)  # a database failure is logged there and gives None
        except Exception:  # anything else (a bug) must not vanish silently in this worker thread
            logger.exception("could not record %d risk event(s)", len(turns))
            return 0
        if added is None:
            return 0
        if len(self._stored_turns) > MAX_REMEMBERED_TURNS:
            self._stored_turns.clear()  # only costs a query per conversation again
        self._stored_turns.update((turn.conversation_id, turn.message_id) for turn in turns)
        return added
