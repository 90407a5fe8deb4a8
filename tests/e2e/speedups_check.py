"""Run our load scripts through the trained model with Rasa as shipped, then with every adjustment of
bot/ops/rasa_main.py, in one process; exit 0 only if every conversation's events are identical.
The adjusted run also screens each message as the REST channel's crisis-first gate does, so the safety
component reuses the screen's verdict (bot/ops/priority.py).

Rasa's run keeps its conversations in Rasa's SQL tracker store, the adjusted run in ours
(bot/ops/tracker_cache.py), checking every tracker it copies from a snapshot against Rasa's own build
from the rows; both on SQLite.

Run by tests/e2e/test_rasa_speedups.py (a separate process, because the adjustments patch Rasa's classes).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List

from rasa.core.agent import load_agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.tracker_store import FailSafeTrackerStore
from rasa.core.utils import AvailableEndpoints
from rasa.utils.endpoints import EndpointConfig

from bot.ops import rasa_main, state_cache, tracker_cache
from bot.ops.load import OURS_SCRIPTS, step_text
from bot.ops.priority import loaded_screen, model_components, screen_for
from bot.safety.component import SafetyClassifier

OUR_STORE = "bot.ops.tracker_cache.CachedSQLTrackerStore"
# Different in every run by design: times, random ids, the loaded model's id.
VOLATILE = {"timestamp", "message_id", "model_id"}


def stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: stable(item) for key, item in value.items() if key not in VOLATILE}
    if isinstance(value, list):
        return [stable(item) for item in value]
    return value


async def conversations(model: str, screened: bool, store_type: str, db: Path) -> List[List[Dict[str, Any]]]:
    """Every scripted conversation's events (no action server), kept in an SQL tracker store on SQLite."""
    endpoints = AvailableEndpoints(tracker_store=EndpointConfig(type=store_type, dialect="sqlite", db=str(db)))
    agent = await load_agent(model_path=model, endpoints=endpoints)
    screen = screen_for(agent) if screened else None
    if screened and screen is None:
        raise RuntimeError("the model has no safety component to screen with")
    transcripts = []
    for index, script in enumerate(OURS_SCRIPTS * 2):
        sender, reply = f"check-{index}", None
        for _kind, text in script:
            output = CollectingOutputChannel()
            message = UserMessage(step_text(text, reply), output, sender)
            if screen is not None:
                screen(message.text or "")
            await agent.handle_message(message)
            reply = output.messages
        tracker = await agent.tracker_store.retrieve(sender)
        assert tracker is not None
        transcripts.append([stable(event.as_dict()) for event in tracker.events])
    component = loaded_screen(model_components(agent))
    if screened and not (isinstance(component, SafetyClassifier) and len(component.screened) == 0):
        raise RuntimeError("the parse did not take every screened verdict")
    if store_type == OUR_STORE:
        store = agent.tracker_store
        if isinstance(store, FailSafeTrackerStore):
            store = store._tracker_store
        # Every read but each conversation's first (nothing stored yet) copied a checked snapshot.
        messages = sum(len(script) for script in OURS_SCRIPTS * 2)
        counts = tuple(getattr(store, name, None) for name in ("verified", "builds"))
        if not isinstance(store, tracker_cache.CachedSQLTrackerStore) or counts != (messages, 0):
            raise RuntimeError(f"not every read after the first copied a checked snapshot: {counts}, {messages}")
        print(f"tracker snapshots verified against the rows: {store.verified}")
    return transcripts


def main(model: str) -> int:
    with tempfile.TemporaryDirectory(prefix="speedups-check-") as scratch:
        shipped = asyncio.run(conversations(model, False, "sql", Path(scratch) / "rasa.db"))
        rasa_main.speed_ups()
        states = state_cache.incremental_policy_states()
        os.environ[tracker_cache.VERIFY_ENV] = "1"
        adjusted = asyncio.run(conversations(model, True, OUR_STORE, Path(scratch) / "ours.db"))
    if not states.extended:
        print("the policies' states were never extended: the adjustment was not used", file=sys.stderr)
        return 1
    events = sum(len(transcript) for transcript in shipped)
    for index, (before, after) in enumerate(zip(shipped, adjusted, strict=True)):
        if before != after:
            # The first differing event (or, when one is longer, the first event past the shorter one).
            first = next((i for i, pair in enumerate(zip(before, after, strict=False)) if pair[0] != pair[1]),
                         min(len(before), len(after)))
            print(f"conversation {index} differs at event {first}", file=sys.stderr)
            return 1
    print(f"identical: {len(shipped)} conversations, {events} events")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
