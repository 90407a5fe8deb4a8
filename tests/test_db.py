from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from bot.db import engine_for, session_scope, upgrade
from bot.safety.models import RiskEvent
from tests.db_urls import postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
    else:
        yield from postgres_database("dbtest")


def test_migrations_create_the_schema(database_url: str) -> None:
    upgrade(database_url)
    assert "risk_events" in inspect(engine_for(database_url)).get_table_names()
    upgrade(database_url)  # running again is harmless


def test_a_risk_event_is_stored_once_per_message(database_url: str) -> None:
    upgrade(database_url)
    event = {"conversation_id": "c1", "message_id": "m1", "level": "acute", "score": 0.9, "reasons": ["rule:x"]}
    with session_scope(database_url) as session:
        session.add(RiskEvent(**event))
    with session_scope(database_url) as session:
        stored = session.query(RiskEvent).one()
        assert (stored.level, stored.reasons, stored.created_at is not None) == ("acute", ["rule:x"], True)
    with pytest.raises(IntegrityError), session_scope(database_url) as session:
        session.add(RiskEvent(**event))
    engine_for(database_url).dispose()
