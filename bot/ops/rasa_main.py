"""`python -m bot.ops.rasa_main run …`: Rasa's own command line with seven production adjustments.

1. A bounded custom-action timeout. Rasa 3.6 waits up to 300 s for the action server
(rasa.core.constants.DEFAULT_REQUEST_TIMEOUT, read at call time by RemoteAction.run) and offers no
setting for it. A hung action server would then hold the conversation's lock for minutes, so a crisis
message sent right after a slow action would wait too. We lower that one module constant before Rasa
starts; a timed-out action is logged by Rasa's processor and the turn continues without its events.

2. SQLite tracker store (the local default) with synchronous=OFF. Rasa commits on the event loop; with
SQLite's default (several fsyncs per commit) that was 18% of the server's time under load (py-spy,
`make bench`). A killed Rasa process still loses nothing (the OS has the data); only a power cut or OS
crash could. (WAL mode was measured too: Rasa opens a connection per query and the checkpoint on each
close cost as much.) PostgreSQL, the production tracker store, is not affected.

3. The action server's reply is validated with a schema compiled once. Rasa calls jsonschema.validate,
which re-checks the schema itself against the meta-schema on every custom action (10% of the server's
time under load). Same schema, same errors: an invalid reply still goes through Rasa's own check.

4. A message that waits for its conversation's lock (another message of the same conversation is being
handled) checks again every 0.1 s instead of every second (LOCK_WAIT_SECONDS), so a crisis message sent
right behind another one is not delayed by up to a second.

5. Event types are looked up once. Deserialising a tracker resolves every stored event's type with
Event.resolve_by_type, which walks all Event subclasses each time (4-14% of the server's time under
load, more in longer conversations). The classes do not change after start-up, so the answer is cached.

6. Request bodies above MAX_REQUEST_BYTES (16 KiB) get 413 before they are parsed. Sanic reads
SANIC_REQUEST_MAX_SIZE when Rasa creates its app; it is set here, for the Rasa server only (the action
server, also Sanic, receives whole trackers and must keep its larger default).

7. No visitor text in the event broker's error log. When RabbitMQ is unreachable, Rasa's pika broker
logs every event it could not publish at ERROR level, "reduced" by dropping parse_data only: the
visitor's text (and the bot's reply) went into the log. Its log calls now keep only the event's type,
conversation id and timestamp (found by tests/e2e/test_prod_broker_down.py).

The REST channel's own fixes live in bot/ops/rest_channel.py.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from typing import Any, Dict

ACTION_TIMEOUT_ENV = "ACTION_TIMEOUT_SECONDS"
DEFAULT_ACTION_TIMEOUT_SECONDS = 1.0
LOCK_WAIT_ENV = "LOCK_WAIT_SECONDS"
DEFAULT_LOCK_WAIT_SECONDS = 0.1
MAX_REQUEST_BYTES_ENV = "MAX_REQUEST_BYTES"
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024


def seconds_from_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        value = float(raw) if raw else default
    except ValueError as error:
        raise SystemExit(f"{name}={raw!r} is not a number of seconds") from error
    if value <= 0:
        raise SystemExit(f"{name} must be positive")
    return value


def apply_action_timeout(seconds: float) -> None:
    import rasa.core.actions.action as remote_actions

    remote_actions.DEFAULT_REQUEST_TIMEOUT = seconds


def tune_sqlite_connections() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def set_sqlite_pragmas(connection: Any, _record: Any) -> None:
        if isinstance(connection, sqlite3.Connection):
            cursor = connection.cursor()
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.close()


def compile_action_result_schema() -> None:
    from jsonschema import validators
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    compiled = validators.validator_for(schema)(schema)
    rasa_check = RemoteAction._validate_action_result

    def validate_action_result(self: RemoteAction, result: Dict[str, Any]) -> bool:
        if compiled.is_valid(result):
            return True
        return rasa_check(self, result)  # raises Rasa's own ValidationError with its explanation

    RemoteAction._validate_action_result = validate_action_result


def shorten_lock_wait(seconds: float) -> None:
    from rasa.core import lock_store

    rasa_lock = lock_store.LockStore.lock

    def lock(
        self: lock_store.LockStore,
        conversation_id: str,
        lock_lifetime: float = lock_store.LOCK_LIFETIME,
        wait_time_in_seconds: float = seconds,
    ) -> Any:
        return rasa_lock(self, conversation_id, lock_lifetime, wait_time_in_seconds)

    lock_store.LockStore.lock = lock


def cache_event_type_lookup() -> None:
    from rasa.shared.core.events import Event

    lookup = functools.lru_cache(maxsize=256)(Event.resolve_by_type)
    Event.resolve_by_type = staticmethod(lookup)


BROKER_LOG_FIELDS = ("sender_id", "event", "timestamp")


class _EventTextRedactingLogger:
    """Passes every call on to Rasa's logger with `rasa_event` cut down to BROKER_LOG_FIELDS."""

    def __init__(self, wrapped: Any) -> None:
        self._wrapped = wrapped

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._wrapped, name)

        def call(*args: Any, **fields: Any) -> Any:
            event = fields.get("rasa_event")
            if isinstance(event, dict):
                fields["rasa_event"] = {key: event.get(key) for key in BROKER_LOG_FIELDS}
            return method(*args, **fields)

        return call


def keep_visitor_text_out_of_broker_logs() -> None:
    import rasa.core.brokers.pika as pika_broker

    if not isinstance(pika_broker.structlogger, _EventTextRedactingLogger):
        pika_broker.structlogger = _EventTextRedactingLogger(pika_broker.structlogger)


def limit_request_size() -> None:
    raw = os.environ.get(MAX_REQUEST_BYTES_ENV) or str(DEFAULT_MAX_REQUEST_BYTES)
    if not raw.isdigit() or int(raw) < 1024:
        raise SystemExit(f"{MAX_REQUEST_BYTES_ENV}={raw!r} must be a whole number of bytes, at least 1024")
    os.environ["SANIC_REQUEST_MAX_SIZE"] = raw


def main() -> None:
    limit_request_size()
    apply_action_timeout(seconds_from_env(ACTION_TIMEOUT_ENV, DEFAULT_ACTION_TIMEOUT_SECONDS))
    shorten_lock_wait(seconds_from_env(LOCK_WAIT_ENV, DEFAULT_LOCK_WAIT_SECONDS))
    tune_sqlite_connections()
    compile_action_result_schema()
    cache_event_type_lookup()
    keep_visitor_text_out_of_broker_logs()
    from rasa.__main__ import main as rasa_cli

    rasa_cli()


if __name__ == "__main__":
    main()
