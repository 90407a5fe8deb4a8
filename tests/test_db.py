from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from bot.db import DatabaseUnavailable, database_transaction, engine_for, session_scope, upgrade, with_database
from bot.safety.models import RiskEvent
from tests.db_urls import empty_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from empty_database(request.param, tmp_path, "dbtest")


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


VISITOR_WORDS = "I want to hurt myself tonight"


def add_risk_event(session: Session) -> int:
    session.add(RiskEvent(conversation_id="c1", message_id="m1", level="acute", score=0.9, reasons=[VISITOR_WORDS]))
    return 1


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens once the socket is closed


def test_with_database_returns_the_work_and_commits_it(database_url: str) -> None:
    upgrade(database_url)
    assert with_database(add_risk_event, None, "could not add", database_url) == 1
    with session_scope(database_url) as session:
        assert session.query(RiskEvent).one().reasons == [VISITOR_WORDS]
    engine_for(database_url).dispose()


@pytest.mark.parametrize("kind", ["sqlite without tables", "postgresql not running"])
def test_with_database_down_logs_the_failure_without_visitor_text_and_returns_the_fallback(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if kind.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'empty.db'}"  # no migrations: the INSERT fails on the missing table
        with pytest.raises(OperationalError) as raw, session_scope(url) as session:
            add_risk_event(session)
        assert VISITOR_WORDS in str(raw.value)  # the driver's own message would leak the words
    else:
        url = f"postgresql://postgres@127.0.0.1:{closed_port()}/nowhere"
    caplog.set_level(logging.DEBUG)
    fallback = object()
    assert with_database(add_risk_event, fallback, "could not add the test event", url) is fallback
    failures = [record for record in caplog.records if "could not add the test event" in record.getMessage()]
    assert len(failures) == 1 and failures[0].levelno == logging.WARNING
    assert "OperationalError" in failures[0].getMessage()
    assert VISITOR_WORDS not in caplog.text and "Traceback" not in caplog.text


def test_a_conflict_passes_through_database_transaction_but_not_with_database(database_url: str) -> None:
    upgrade(database_url)
    with session_scope(database_url) as session:
        add_risk_event(session)
    with pytest.raises(IntegrityError), database_transaction(database_url) as session:
        add_risk_event(session)  # a booking's "time just taken" is decided by its caller
    assert with_database(add_risk_event, 0, "could not add", database_url) == 0  # a record carries on
    engine_for(database_url).dispose()


def test_database_transaction_turns_an_outage_into_database_unavailable(caplog: pytest.LogCaptureFixture) -> None:
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/nowhere"
    with pytest.raises(DatabaseUnavailable, match="OperationalError"), database_transaction(url) as session:
        session.execute(text("SELECT 1"))
    assert "application database unavailable (OperationalError)" in caplog.text


def test_a_sqlite_file_database_keeps_its_connections_and_writes_ahead(tmp_path: Path) -> None:
    # Under load a new connection per transaction (SQLAlchemy 1.4's default for files) and a rollback
    # journal cost ~7% of the Rasa process's CPU; the pooled WAL connection must still see every commit.
    url = f"sqlite:///{tmp_path / 'app.db'}"
    upgrade(url)
    connections = set()
    for attempt in range(3):
        with session_scope(url) as session:
            if attempt == 0:
                add_risk_event(session)
            connections.add(id(session.connection().connection.dbapi_connection))
            assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert session.query(RiskEvent).count() == 1
    assert len(connections) == 1
    engine_for(url).dispose()


def test_an_in_memory_sqlite_database_is_one_database_per_thread() -> None:
    # A pool of separate connections would give each its own empty in-memory database.
    url = "sqlite://"
    with session_scope(url) as session:
        session.execute(text("CREATE TABLE kept (n INTEGER)"))
        session.execute(text("INSERT INTO kept VALUES (1)"))
    with session_scope(url) as session:
        assert session.execute(text("SELECT n FROM kept")).scalar() == 1
    engine_for(url).dispose()
