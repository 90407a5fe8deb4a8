"""Crisis replies do not depend on the action server: it is down, or it hangs (accepts, never answers)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, List

import pytest

from bot.ops.procs import free_port
from bot.settings import practice
from tests.e2e.ops_servers import SingleServer, start_single

pytestmark = pytest.mark.e2e
CRISIS_DEADLINE_S = 2.0


class HungServer:
    """A socket that accepts connections and never answers them."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.accepted: List[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        for connection in self.accepted:
            connection.close()
        self.listener.close()


@pytest.fixture(scope="module")
def hung() -> Iterator[HungServer]:
    server = HungServer()
    yield server
    server.close()


@pytest.fixture(scope="module", params=["down", "hung"])
def rasa_without_actions(request: pytest.FixtureRequest, hung: HungServer, tmp_path_factory: pytest.TempPathFactory
                         ) -> Iterator[SingleServer]:
    port = free_port() if request.param == "down" else hung.port  # nothing listens on a fresh free port
    server = start_single(tmp_path_factory.mktemp(f"actions-{request.param}"), f"http://127.0.0.1:{port}/webhook",
                          with_actions=False)
    yield server
    server.stop()


def crisis_reply(server: SingleServer, sender: str) -> float:
    started = time.monotonic()
    response = server.say("I want to kill myself", sender)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert "988" in " ".join(reply.get("text", "") for reply in response.json())
    return elapsed


def test_crisis_reply_arrives_quickly_without_a_working_action_server(rasa_without_actions: SingleServer) -> None:
    assert crisis_reply(rasa_without_actions, f"fault-{uuid.uuid4()}") < CRISIS_DEADLINE_S


def test_crisis_right_behind_a_custom_action_is_not_held_up(rasa_without_actions: SingleServer) -> None:
    """The custom action's turn holds the conversation's lock; its timeout bounds the crisis reply's wait."""
    sender = f"fault-{uuid.uuid4()}"
    with ThreadPoolExecutor(max_workers=2) as pool:
        action_turn = pool.submit(rasa_without_actions.say, "are you open right now?", sender)
        time.sleep(0.2)  # the action's turn takes the lock first
        started = time.monotonic()
        crisis = pool.submit(crisis_reply, rasa_without_actions, sender)
        crisis_elapsed = crisis.result(timeout=30)
        assert crisis_elapsed < CRISIS_DEADLINE_S, f"crisis reply took {crisis_elapsed:.2f} s"
        assert time.monotonic() - started < CRISIS_DEADLINE_S + 0.5
        assert action_turn.result(timeout=30).status_code == 200


def test_conversation_continues_after_the_failed_action(rasa_without_actions: SingleServer) -> None:
    sender = f"fault-{uuid.uuid4()}"
    assert rasa_without_actions.say("are you open right now?", sender).status_code == 200
    replies = rasa_without_actions.say("can I talk to a real person", sender).json()
    assert replies, "no reply after the failed custom action"
    tracker = Path(rasa_without_actions.var_dir)
    assert (tracker / "tracker.db").exists()


def test_the_failed_custom_action_still_gets_a_reply_with_the_phone(rasa_without_actions: SingleServer) -> None:
    """Refused (down) or timed out (hung): the visitor hears to try again or call, never silence."""
    replies = rasa_without_actions.say("are you open right now?", f"fault-{uuid.uuid4()}").json()
    words = " ".join(reply.get("text") or "" for reply in replies)
    assert "couldn't finish that" in words and practice().phone in words, words
