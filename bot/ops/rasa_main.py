"""`python -m bot.ops.rasa_main run …`: Rasa's own command line with five production adjustments.

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

5. The REST channel refuses malformed bodies with 400 instead of failing with 500 (found by fuzzing:
Rasa calls `.get` on whatever JSON arrives): the body must be an object with a string `message` and a
string `sender` of 1-255 characters. Without this check a missing sender puts every such visitor into
one shared conversation named "default", and a longer one fails in PostgreSQL (VARCHAR(255)).
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any, Dict

ACTION_TIMEOUT_ENV = "ACTION_TIMEOUT_SECONDS"
DEFAULT_ACTION_TIMEOUT_SECONDS = 1.0
LOCK_WAIT_ENV = "LOCK_WAIT_SECONDS"
DEFAULT_LOCK_WAIT_SECONDS = 0.1


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


MAX_SENDER_LENGTH = 255


def checked_rest_body(body: Any) -> Dict[str, Any]:
    """The REST channel's JSON body if it is well formed; otherwise the reason, as a ValueError."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    sender, message = body.get("sender"), body.get("message")
    if not isinstance(sender, str) or not 0 < len(sender) <= MAX_SENDER_LENGTH:
        raise ValueError(f"'sender' must be a string of 1-{MAX_SENDER_LENGTH} characters")
    if not isinstance(message, str):
        raise ValueError("'message' must be a string")
    return body


def validate_rest_bodies() -> None:
    from rasa.core.channels.rest import RestInput
    from sanic.exceptions import InvalidUsage
    from sanic.request import Request

    rasa_extract_sender = RestInput._extract_sender

    async def extract_sender(self: RestInput, request: Request) -> Any:
        try:
            checked_rest_body(request.json)  # Sanic itself answers 400 to a body that is not JSON
        except ValueError as error:
            raise InvalidUsage(str(error)) from None
        return await rasa_extract_sender(self, request)

    RestInput._extract_sender = extract_sender


def main() -> None:
    apply_action_timeout(seconds_from_env(ACTION_TIMEOUT_ENV, DEFAULT_ACTION_TIMEOUT_SECONDS))
    shorten_lock_wait(seconds_from_env(LOCK_WAIT_ENV, DEFAULT_LOCK_WAIT_SECONDS))
    tune_sqlite_connections()
    compile_action_result_schema()
    validate_rest_bodies()
    from rasa.__main__ import main as rasa_cli

    rasa_cli()


if __name__ == "__main__":
    main()
