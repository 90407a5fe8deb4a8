"""No lost turns: a custom action that times out still answers the visitor, and trying again works.

A real Rasa server (bot.ops.rasa_main, 1 s action timeout) and the real action server, with a proxy
between them that hangs or answers late on the call we choose (tests/e2e/faulty_actions.py). Under
`make bench` saturation such a slow call left a booking turn with no reply at all.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import requests
from sqlalchemy import create_engine, text

from bot.db import upgrade
from bot.settings import practice
from tests.e2e.faulty_actions import FaultyActionServer
from tests.e2e.ops_servers import SingleServer, start_single

pytestmark = pytest.mark.e2e
ANSWERS_BEFORE_STATE = ["I'd like to book an intake call", "for me", "34", "Maria Lopez", "212 555 0123", "text", "no"]
ANSWERS_AFTER_STATE = ["Aetna", "therapy only"]


@pytest.fixture(scope="module")
def faulty() -> Iterator[FaultyActionServer]:
    proxy = FaultyActionServer(hold_seconds=3.0)
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def server(faulty: FaultyActionServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SingleServer]:
    var_dir = tmp_path_factory.mktemp("action-timeouts")
    database = f"sqlite:///{var_dir / 'app.db'}"
    upgrade(database)
    running = start_single(var_dir, faulty.url, extra_env={"ACTION_TIMEOUT_SECONDS": "1", "DATABASE_URL": database})
    faulty.target = f"http://127.0.0.1:{running.actions_port}/webhook"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{running.actions_port}/health", timeout=2).ok:
                break
        except requests.RequestException:
            time.sleep(0.5)
    yield running
    running.stop()


def say(server: SingleServer, sender: str, message: str) -> List[Dict]:
    response = server.say(message, sender)
    assert response.status_code == 200
    return list(response.json())


def joined(replies: List[Dict]) -> str:
    return " ".join(reply.get("text") or "" for reply in replies)


def assert_try_again(replies: List[Dict]) -> None:
    assert replies, "the visitor got no reply"
    words = joined(replies)
    assert "couldn't finish that" in words and practice().phone in words, words


def fill_until_time(server: SingleServer, sender: str) -> str:
    for answer in [*ANSWERS_BEFORE_STATE, "NY", *ANSWERS_AFTER_STATE]:
        say(server, sender, answer)
    times = say(server, sender, "skip")[-1]
    return str(times["buttons"][0]["payload"])


def bookings(server: SingleServer, sender: str) -> List[tuple]:
    engine = create_engine(f"sqlite:///{Path(server.var_dir) / 'app.db'}")
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT code, first_name FROM intake_bookings WHERE conversation_id = :sender"), {"sender": sender}
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_a_hung_form_validation_answers_keeps_the_answers_and_the_retry_continues(
    server: SingleServer, faulty: FaultyActionServer
) -> None:
    sender = f"timeout-{uuid.uuid4()}"
    for answer in ANSWERS_BEFORE_STATE:
        say(server, sender, answer)
    faulty.hang("validate_intake_form")
    started = time.monotonic()
    replies = say(server, sender, "NY")
    assert time.monotonic() - started < 2.5  # the 1 s timeout, not the 3 s hang
    assert faulty.faulted[-1:] == ["validate_intake_form"]
    assert_try_again(replies)
    again = joined(say(server, sender, "NY"))  # the same question was still open: the form goes on
    assert "insurance" in again.lower(), again
    for answer in ANSWERS_AFTER_STATE:
        say(server, sender, answer)
    first_time = say(server, sender, "skip")[-1]["buttons"][0]["payload"]
    say(server, sender, first_time)
    summary = joined(say(server, sender, "yes"))
    # Nothing had to be retyped: the answers before the timeout and the retried one are all there.
    assert all(part in summary for part in ("Maria Lopez", "+12125550123", "State: New York", "Aetna")), summary
    booked = joined(say(server, sender, "yes"))
    code = booked.split("confirmation code is ")[1][:6]
    assert bookings(server, sender) == [(code, "Maria")]


def test_a_confirmation_answered_too_late_books_once_and_the_retry_tells_the_code(
    server: SingleServer, faulty: FaultyActionServer
) -> None:
    sender = f"timeout-{uuid.uuid4()}"
    say(server, sender, fill_until_time(server, sender))
    say(server, sender, "yes")  # consent; the summary follows
    faulty.late("validate_intake_form")
    assert_try_again(say(server, sender, "yes"))
    (stored,) = bookings(server, sender)  # the action server did store it before Rasa stopped waiting
    booked = joined(say(server, sender, "yes"))
    assert "confirmation code is " in booked, booked
    assert booked.split("confirmation code is ")[1][:6] == stored[0]
    assert bookings(server, sender) == [stored]


def test_a_hung_custom_action_outside_a_form_answers_too(server: SingleServer, faulty: FaultyActionServer) -> None:
    sender = f"timeout-{uuid.uuid4()}"
    faulty.hang("action_office_status")
    assert_try_again(say(server, sender, "are you open right now?"))
    assert joined(say(server, sender, "are you open right now?")), "no reply once the action server answers"
