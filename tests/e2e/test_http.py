"""The whole path over HTTP: launcher → Rasa server → NLG / action server → replies."""

from __future__ import annotations

import signal
import socket
import subprocess
import uuid
from typing import Dict, List

import pytest
import requests

from bot.settings import practice
from tests.e2e.conftest import RunningAssistant, launch, tracker_events

pytestmark = pytest.mark.e2e


def say(assistant: RunningAssistant, text: str, sender: str) -> List[Dict]:
    response = requests.post(
        f"{assistant.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=30
    )
    response.raise_for_status()
    return response.json()


def joined(replies: List[Dict]) -> str:
    return " ".join(reply.get("text", "") for reply in replies)


def test_greeting_says_automated_and_gives_988_and_911(assistant: RunningAssistant) -> None:
    text = joined(say(assistant, "hello", f"e2e-{uuid.uuid4()}"))
    assert "automated assistant" in text
    assert "988" in text and "911" in text


def test_asking_for_a_person_gives_phone_and_hours(assistant: RunningAssistant) -> None:
    text = joined(say(assistant, "can I talk to a real person", f"e2e-{uuid.uuid4()}"))
    assert practice().phone in text
    assert practice().hours.describe() in text


def test_out_of_scope_gets_a_polite_refusal_with_next_steps(assistant: RunningAssistant) -> None:
    replies = say(assistant, "what's the weather like in Paris", f"e2e-{uuid.uuid4()}")
    assert "can't help with that" in joined(replies)
    assert any(reply.get("buttons") for reply in replies)


def test_custom_action_answers_through_the_action_server(assistant: RunningAssistant) -> None:
    text = joined(say(assistant, "are you open right now?", f"e2e-{uuid.uuid4()}"))
    assert ("We're open right now" in text) or ("We're closed at the moment" in text)


def test_conversation_is_stored_in_the_sql_tracker_store(assistant: RunningAssistant) -> None:
    sender = f"e2e-{uuid.uuid4()}"
    say(assistant, "hi", sender)
    events = tracker_events(assistant.rasa_url, assistant.token, sender)
    assert any(event.get("event") == "user" and event.get("text") == "hi" for event in events)
    assert (assistant.var_dir / "tracker.db").stat().st_size > 0


def test_http_api_needs_the_token(assistant: RunningAssistant) -> None:
    assert requests.get(f"{assistant.rasa_url}/status", timeout=10).status_code == 401
    assert requests.get(f"{assistant.rasa_url}/status", params={"token": "wrong"}, timeout=10).status_code == 401
    ok = requests.get(f"{assistant.rasa_url}/status", params={"token": assistant.token}, timeout=10)
    assert ok.status_code == 200 and ok.json()["model_file"]


def listening_addresses(port: int) -> List[str]:
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as listing:
            for row in listing.readlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:
                    addresses.append(address)
    return addresses


def test_rasa_listens_on_loopback_only(assistant: RunningAssistant) -> None:
    addresses = listening_addresses(assistant.rasa_port)
    assert addresses, "nothing listens on the Rasa port"
    assert all(address == "0100007F" for address in addresses), addresses  # 127.0.0.1


def test_page_is_served_with_security_headers(assistant: RunningAssistant) -> None:
    page = requests.get(f"{assistant.web_url}/", timeout=10)
    assert page.status_code == 200
    assert practice().name in page.text and "988" in page.text
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"


def test_a_taken_port_is_refused_with_a_clear_message(assistant: RunningAssistant) -> None:
    second = launch(assistant.env)
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 1
    assert "already in use" in out and str(assistant.rasa_port) in out


def test_a_paused_conversation_still_gets_the_crisis_reply_over_rest(assistant: RunningAssistant) -> None:
    """While staff have the conversation (paused), Rasa answers nothing; a risk message still must."""
    sender = f"e2e-{uuid.uuid4()}"
    say(assistant, "hi", sender)
    paused = requests.post(
        f"{assistant.rasa_url}/conversations/{sender}/tracker/events",
        params={"token": assistant.token},
        json={"event": "pause"},
        timeout=10,
    )
    assert paused.status_code == 200
    assert say(assistant, "what is dbt", sender) == []  # ordinary messages wait for the person
    text = joined(say(assistant, "i want to kill myself", sender))
    assert "988" in text and "911" in text


def port_accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_ctrl_c_stops_every_process(assistant: RunningAssistant) -> None:
    """Runs last in this module: it stops the shared assistant."""
    assistant.process.send_signal(signal.SIGINT)
    try:
        assert assistant.process.wait(timeout=30) == 0
    except subprocess.TimeoutExpired:
        assistant.process.kill()
        raise
    for port in (assistant.rasa_port, assistant.actions_port, assistant.web_port):
        assert not port_accepts(port), f"port {port} still answers after Ctrl-C"
