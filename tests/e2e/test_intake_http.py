"""Booking an intake call end to end over HTTP: real Rasa server, action server, database and webhook."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.e2e.conftest import MODEL, assert_snapshots_matched, assistant_env, free_port, start_and_wait
from tests.webhook import RecordingWebhook

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def booking_assistant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict]:
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `make train` first (make test does)")
    var_dir = tmp_path_factory.mktemp("booking-var")
    webhook = RecordingWebhook(path="/notices")
    rasa_port = free_port()
    env = assistant_env(var_dir, rasa_port, free_port(), free_port())
    env.update(INTAKE_WEBHOOK_URL=webhook.url, INTAKE_OUTBOX_POLL_SECONDS="0.5")
    env.pop("DATABASE_URL", None)
    process, _ = start_and_wait(env)
    yield {"url": f"http://localhost:{rasa_port}", "var_dir": Path(var_dir), "webhook": webhook}
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    webhook.close()
    assert_snapshots_matched(Path(var_dir))


def say(assistant: Dict, sender: str, message: str) -> List[Dict]:
    response = requests.post(
        f"{assistant['url']}/webhooks/rest/webhook", json={"sender": sender, "message": message}, timeout=60
    )
    response.raise_for_status()
    return response.json()


def test_booking_an_intake_call_end_to_end(booking_assistant: Dict) -> None:
    sender = f"e2e-booking-{uuid.uuid4()}"
    replies = say(booking_assistant, sender, "I'd like to book an intake call")
    assert "automated assistant" in replies[0]["text"]
    assert [b["payload"] for b in replies[-1]["buttons"]] == ["for me", "for my child", "for someone else"]
    say(booking_assistant, sender, "for me")
    person = say(booking_assistant, sender, "can I talk to a real person")
    assert "(555) 010-4477" in person[0]["text"] and person[-1]["text"] == "How old are you?"
    why = say(booking_assistant, sender, "why do you need that?")
    assert "parent or guardian" in why[0]["text"] and why[-1]["text"] == "How old are you?"
    for answer in ["34", "Maria Lopez", "212 555 0123", "text", "no", "NY", "Aetna", "therapy only"]:
        say(booking_assistant, sender, answer)
    times = say(booking_assistant, sender, "skip")[-1]
    first_time = times["buttons"][0]["payload"]
    assert len(times["buttons"]) == 3
    assert "agree" in say(booking_assistant, sender, first_time)[-1]["text"]
    summary = " ".join(r["text"] for r in say(booking_assistant, sender, "yes"))
    assert "Maria Lopez" in summary and "+12125550123" in summary
    booked = say(booking_assistant, sender, "yes")
    code = booked[0]["text"].split("confirmation code is ")[1][:6]
    engine = create_engine(f"sqlite:///{booking_assistant['var_dir'] / 'app.db'}")
    with engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT b.status, b.first_name, c.phone, c.preferred_method, c.ok_to_leave_message "
                "FROM intake_bookings b JOIN intake_contact_preferences c ON c.booking_id = b.id WHERE b.code = :code"
            ),
            {"code": code},
        ).one()
    engine.dispose()
    assert tuple(row) == ("booked", "Maria", "+12125550123", "text", 0)
    deadline = time.monotonic() + 30
    while not booking_assistant["webhook"].received and time.monotonic() < deadline:
        time.sleep(0.2)
    (notice,) = booking_assistant["webhook"].received
    assert notice["code"] == code and "Maria" not in json.dumps(notice)


def test_crisis_inside_the_booking_form_gets_the_crisis_reply(booking_assistant: Dict) -> None:
    sender = f"e2e-booking-{uuid.uuid4()}"
    say(booking_assistant, sender, "book a call")
    say(booking_assistant, sender, "for me")
    reply = " ".join(r["text"] for r in say(booking_assistant, sender, "I want to kill myself"))
    assert "988" in reply and "911" in reply
    assert "How old" not in reply
