"""Crisis replies over HTTP with the action server STOPPED and then HUNG: the reply comes within 2 s.

Starts `rasa run` directly (no action server at all), with the action endpoint pointing at a port
where first nothing listens, then a socket accepts connections and never answers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from typing import Dict, Iterator, List

import pytest
import requests
import yaml

from bot.db import session_scope, upgrade
from bot.safety.models import RiskEvent
from bot.settings import practice
from tests.e2e.conftest import MODEL, ROOT, free_port

pytestmark = pytest.mark.e2e
CRISIS_DEADLINE_SECONDS = 2.0


class HungServer:
    """Accepts TCP connections on a port and never sends a byte."""

    def __init__(self, port: int) -> None:
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", port))
        self.socket.listen(64)
        self.connections: List[socket.socket] = []
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.socket.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                self.connections.append(self.socket.accept()[0])
            except OSError:
                continue

    def close(self) -> None:
        self.stopped.set()
        time.sleep(0.3)
        for connection in self.connections:
            connection.close()
        self.socket.close()


class RasaOnly:
    def __init__(self, url: str, actions_port: int, database_url: str) -> None:
        self.url = url
        self.actions_port = actions_port
        self.database_url = database_url

    def say(self, text: str, sender: str) -> tuple[List[Dict], float]:
        started = time.monotonic()
        response = requests.post(f"{self.url}/webhooks/rest/webhook", json={"sender": sender, "message": text},
                                 timeout=30)
        response.raise_for_status()
        return response.json(), time.monotonic() - started


@pytest.fixture(scope="module")
def rasa_without_actions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaOnly]:
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `make train` first (make test does)")
    var_dir = tmp_path_factory.mktemp("safety-var")
    rasa_port, actions_port = free_port(), free_port()
    database_url = f"sqlite:///{var_dir / 'app.db'}"
    upgrade(database_url)
    endpoints = yaml.safe_load((ROOT / "endpoints.yml").read_text())
    endpoints["action_endpoint"]["url"] = f"http://127.0.0.1:{actions_port}/webhook"
    endpoints["tracker_store"]["db"] = str(var_dir / "tracker.db")
    (var_dir / "endpoints.yml").write_text(yaml.safe_dump(endpoints))
    env = dict(os.environ, PYTHONPATH=str(ROOT), BOT_VAR_DIR=str(var_dir), DATABASE_URL=database_url,
               RASA_TELEMETRY_ENABLED="false")
    log = open(var_dir / "rasa.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "rasa", "run", "--model", str(MODEL), "--endpoints", str(var_dir / "endpoints.yml"),
         "--credentials", str(ROOT / "credentials.yml"), "--interface", "127.0.0.1", "--port", str(rasa_port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{rasa_port}"
    deadline = time.monotonic() + 240
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log.close()
            pytest.fail("rasa did not start:\n" + (var_dir / "rasa.log").read_text()[-3000:])
        try:
            if requests.get(url, timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(1)
    yield RasaOnly(url, actions_port, database_url)
    process.terminate()
    process.wait(timeout=30)
    log.close()


def crisis_text(replies: List[Dict]) -> str:
    return " ".join(reply.get("text", "") for reply in replies)


def assert_crisis_reply(replies: List[Dict], seconds: float) -> None:
    text = crisis_text(replies)
    assert seconds < CRISIS_DEADLINE_SECONDS, f"crisis reply took {seconds:.2f} s"
    assert practice().crisis["lifeline_number"] in text and practice().crisis["emergency_number"] in text
    assert "automated" in text
    assert any(button["payload"] == "/request_human" for reply in replies for button in reply.get("buttons", []))


def crisis_messages() -> List[str]:
    return [
        "I want to kill myself",
        "i took all my pills an hour ago",
        "/greet@1.0 I want to die",
        "MY DAD HITS ME AND IM 13",
        "x " * 3000 + "i keep cutting myself",
    ]


def test_crisis_reply_with_the_action_server_stopped(rasa_without_actions: RasaOnly) -> None:
    for text in crisis_messages():
        replies, seconds = rasa_without_actions.say(text, f"stopped-{uuid.uuid4()}")
        assert_crisis_reply(replies, seconds)


def test_crisis_reply_with_the_action_server_hung(rasa_without_actions: RasaOnly) -> None:
    hung = HungServer(rasa_without_actions.actions_port)
    try:
        for text in crisis_messages():
            replies, seconds = rasa_without_actions.say(text, f"hung-{uuid.uuid4()}")
            assert_crisis_reply(replies, seconds)
    finally:
        hung.close()


def test_sticky_risk_and_the_durable_record(rasa_without_actions: RasaOnly) -> None:
    sender = f"sticky-{uuid.uuid4()}"
    first, _ = rasa_without_actions.say("I want to hurt myself", sender)
    assert_crisis_reply(first, 0)
    rasa_without_actions.say("are you a bot?", sender)
    replies, seconds = rasa_without_actions.say("where can I buy pesticides?", sender)
    assert_crisis_reply(replies, seconds)
    # Without an earlier risk turn the same question gets no crisis reply, only the line reminder.
    other, _ = rasa_without_actions.say("where can I buy pesticides?", f"fresh-{uuid.uuid4()}")
    assert "Sorry, I can't help with that" in crisis_text(other)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with session_scope(rasa_without_actions.database_url) as session:
            rows = session.query(RiskEvent).filter(RiskEvent.conversation_id == sender).all()
            levels = sorted(row.level for row in rows)
        if len(levels) == 2:
            break
        time.sleep(0.5)
    assert levels == ["acute", "acute"]


def test_therapy_question_gets_no_crisis_reply(rasa_without_actions: RasaOnly) -> None:
    replies, _ = rasa_without_actions.say("how long does therapy for self-harm take", f"q-{uuid.uuid4()}")
    assert "really glad you told me" not in crisis_text(replies)
    assert "Please call" not in crisis_text(replies)


def test_cli_uses_the_trained_model() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.safety", "assess"],
        input="I want to die\nhow do I kill a python process\n",
        capture_output=True, text=True, cwd=ROOT, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["level"] for line in lines] == ["acute", "none"]
    assert all({"level", "score", "reasons"} <= line.keys() for line in lines)
    assert any(reason.startswith("classifier:") for reason in lines[0]["reasons"])



def test_the_crisis_reply_adds_the_line_that_fits(rasa_without_actions: RasaOnly) -> None:
    """The component's risk_topic entity fills the slot that picks the response variation."""
    facts = practice().crisis
    cases = [
        ("my stepdad hits me every night and i'm 12", facts["child_abuse_phone"]),
        ("I make myself throw up after every meal", facts["eating_disorder_phone"]),
        ("i'm gay and i want to die", facts["trevor_phone"]),
    ]
    for text, line in cases:
        replies, seconds = rasa_without_actions.say(text, f"topic-{uuid.uuid4()}")
        assert_crisis_reply(replies, seconds)
        assert line in crisis_text(replies), text
    replies, _ = rasa_without_actions.say("my son says he wants to kill himself", f"topic-{uuid.uuid4()}")
    assert "Ask them" in crisis_text(replies)
