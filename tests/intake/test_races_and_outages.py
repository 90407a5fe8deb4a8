"""Fifty people confirming the same time at once, and a database that goes away and comes back."""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any, Dict, List

import pytest
from sqlalchemy import select

from actions.intake import ActionAskIntakeTime, ValidateIntakeForm
from bot.db import session_scope
from bot.intake.models import Booking, OutboxMessage
from tests.intake.conftest import MONDAY_8, responses, run, slot_events, tracker
from tests.intake.form_driver import ADULT_ANSWERS, FormSession

ATTEMPTS = 50


def ready_to_confirm() -> Dict[str, Any]:
    form = FormSession()
    form.fill(ADULT_ANSWERS, stop_before="intake_confirmed")
    return dict(form.slots)


def test_fifty_concurrent_confirmations_make_exactly_one_booking(database_url: str) -> None:
    slots = ready_to_confirm()
    assert slots["intake_time"] == MONDAY_8.isoformat()
    barrier = threading.Barrier(ATTEMPTS)
    results: List[Any] = [None] * ATTEMPTS

    def attempt(index: int) -> None:
        # Fifty different visitors: a retry from the same conversation finds its own booking instead.
        the_tracker = tracker(slots, "yes", {"intake_confirmed": "yes"}, sender=f"visitor-{index}")
        barrier.wait()
        try:
            results[index] = run(ValidateIntakeForm(), the_tracker)
        except Exception as error:  # surfaced by the assertion below
            results[index] = error

    threads = [threading.Thread(target=attempt, args=(index,)) for index in range(ATTEMPTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not [result for result in results if isinstance(result, Exception) or result is None], results
    booked = [r for r in results if slot_events(r[0]).get("intake_outcome") == "booked"]
    refused = [r for r in results if responses(r[1]) == ["utter_intake_time_just_taken"]]
    assert (len(booked), len(refused)) == (1, ATTEMPTS - 1)
    for events, messages in refused:
        offered = [button["payload"] for button in messages[0]["buttons"]]
        assert len(offered) == 3 and "2026-11-23 08:00" not in offered
        changes = slot_events(events)
        assert changes["intake_time"] is None and changes["intake_confirmed"] is None
        assert "intake_name" not in changes  # every other answer is kept
    with session_scope(database_url) as session:
        assert len(session.execute(select(Booking)).all()) == 1
        assert len(session.execute(select(OutboxMessage)).all()) == 1


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens once the socket is closed


def test_database_down_gives_the_phone_keeps_the_answers_and_retries(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    slots = ready_to_confirm()
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{closed_port()}/nowhere")
    caplog.set_level(logging.DEBUG)
    events, messages = run(ValidateIntakeForm(), tracker(slots, "yes", {"intake_confirmed": "yes"}))
    assert responses(messages) == ["utter_intake_database_down_confirm"]
    changes = slot_events(events)
    assert changes["intake_confirmed"] is None and changes["requested_slot"] == "intake_confirmed"
    assert not {name for name, value in changes.items() if value is None} - {"intake_confirmed", "intake_last_name"}
    assert "Traceback" not in caplog.text and "5550123" not in caplog.text
    monkeypatch.setenv("DATABASE_URL", database_url)  # the database is back: confirming again books it
    events, messages = run(ValidateIntakeForm(), tracker(slots, "yes", {"intake_confirmed": "yes"}))
    assert slot_events(events)["intake_outcome"] == "booked"
    with session_scope(database_url) as session:
        assert session.execute(select(Booking.code)).scalar_one() == slot_events(events)["intake_booking_code"]


def test_no_personal_data_in_application_logs(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    form = FormSession()
    form.fill(ADULT_ANSWERS)
    logged = caplog.text
    assert "intake call booked" in logged
    for personal in ("Maria", "Lopez", "5550123", "maria@example.com", "New York", "UnitedHealthcare"):
        assert personal not in logged


def test_database_down_at_the_time_question_gives_the_phone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{closed_port()}/nowhere")
    _, messages = run(ActionAskIntakeTime(), tracker({"requested_slot": "intake_time"}))
    assert responses(messages) == ["utter_intake_database_down"]
    form = FormSession()
    form.fill(ADULT_ANSWERS, stop_before="intake_time")
    changes, messages = form.answer("2026-11-23 08:00")
    assert responses(messages) == ["utter_intake_database_down"]
    assert changes["intake_time"] is None and form.slots["intake_name"] == "Maria Lopez"
