"""Staff notices reach the webhook even when it is down at first (a real local HTTP server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import select

from bot.db import session_scope
from bot.intake.models import OutboxMessage
from bot.intake.outbox import OutboxSettings, deliver_due, pending_count
from tests.intake.conftest import NOW
from tests.intake.form_driver import ADULT_ANSWERS, FormSession
from tests.webhook import RecordingWebhook

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def webhook() -> Iterator[RecordingWebhook]:
    server = RecordingWebhook(failures=2)
    yield server
    server.close()


def test_notice_is_retried_with_backoff_until_the_webhook_is_back(database_url: str, webhook: RecordingWebhook) -> None:
    FormSession().fill(ADULT_ANSWERS)
    settings = OutboxSettings(webhook_url=webhook.url, timeout_seconds=2, base_backoff_seconds=30)
    assert deliver_due(settings, database_url) == 0
    assert deliver_due(settings, database_url) == 0  # not due yet: backing off, no request sent
    assert webhook.statuses == [503]
    with session_scope(database_url) as session:
        message = session.execute(select(OutboxMessage)).scalar_one()
        assert (message.attempts, message.last_error, message.delivered_at) == (1, "HTTP 503", None)
    later = message.next_attempt_at + timedelta(seconds=1)
    assert deliver_due(settings, database_url, now=later) == 0
    assert deliver_due(settings, database_url, now=later + timedelta(minutes=5)) == 1
    assert webhook.statuses == [503, 503, 204]
    assert pending_count(database_url) == 0
    (body,) = webhook.received
    assert set(body) == {"event", "booking_id", "code", "starts_at", "minutes"}  # nothing personal
    assert deliver_due(settings, database_url, now=NOW + timedelta(days=30)) == 0  # delivered once only


def test_unreachable_webhook_times_out_and_keeps_the_notice(database_url: str) -> None:
    FormSession().fill(ADULT_ANSWERS)
    settings = OutboxSettings(webhook_url="http://127.0.0.1:9/unreachable", timeout_seconds=1)
    assert deliver_due(settings, database_url) == 0
    assert pending_count(database_url) == 1


def test_the_worker_process_delivers_after_the_webhook_recovers(database_url: str, webhook: RecordingWebhook) -> None:
    FormSession().fill(ADULT_ANSWERS)
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        INTAKE_WEBHOOK_URL=webhook.url,
        PYTHONPATH=str(ROOT),
        INTAKE_OUTBOX_POLL_SECONDS="0.2",
        INTAKE_OUTBOX_BACKOFF_SECONDS="0.2",
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "bot.intake.outbox"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while pending_count(database_url) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pending_count(database_url) == 0
        assert webhook.statuses == [503, 503, 204]
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=20)
    assert worker.returncode == 0
    assert "Maria" not in output and "5550123" not in output and "Traceback" not in output
