"""The notifier against a real HTTP webhook that is down first, on SQLite and on PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterator

import pytest

from bot.db import engine_for, session_scope, upgrade
from bot.handoff import tickets
from bot.handoff.clock import ManualClock
from bot.handoff.config import HandoffSettings
from bot.handoff.models import OutboxMessage
from bot.handoff.watcher import run_escalations_and_outbox
from tests.db_urls import empty_database
from tests.handoff.conftest import make_settings
from tests.handoff.console_client import free_port
from tests.webhook import RecordingWebhook


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from empty_database(request.param, tmp_path, "handofftest")


def test_webhook_outage_is_survived_and_urgent_tickets_escalate(
    database_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    upgrade(database_url)
    port = free_port()
    settings: HandoffSettings = replace(
        make_settings(tmp_path), database_url=database_url, webhook_url=f"http://127.0.0.1:{port}/hook"
    )
    with session_scope(database_url) as session:
        tickets.open_ticket(session, clock, "c1", "risk", "acute", settings.console_url)
    assert run_escalations_and_outbox(settings, clock) == {"delivered": 0, "failed": 1}  # nobody listening
    receiver = RecordingWebhook(port=port)
    try:
        clock.advance(seconds=2)
        assert run_escalations_and_outbox(settings, clock) == {"delivered": 1, "failed": 0}
        clock.advance(minutes=5)
        assert run_escalations_and_outbox(settings, clock) == {"delivered": 1, "failed": 0}
        assert [message["kind"] for message in receiver.received] == ["new", "escalation"]
        assert all(message["priority"] == "acute" for message in receiver.received)
        clock.advance(minutes=30)
        assert run_escalations_and_outbox(settings, clock) == {"delivered": 0, "failed": 0}
    finally:
        receiver.close()
    with session_scope(database_url) as session:
        assert {m.status for m in session.query(OutboxMessage)} == {"delivered"}
    engine_for(database_url).dispose()
