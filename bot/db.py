"""The application database: engine, sessions and migrations (SQLite by default, PostgreSQL in production).

Models live next to the code that owns them (bot/safety/models.py, bot/intake/…); all share `Base`.
Schema changes go through Alembic migrations in bot/migrations/ — `python -m bot.db upgrade`.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, declarative_base, sessionmaker
from sqlalchemy.pool import QueuePool

from bot.settings import runtime

log = logging.getLogger(__name__)
Base = declarative_base()
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class DatabaseUnavailable(RuntimeError):
    """The application database cannot be reached; callers show the practice's phone instead."""


def _sqlite_connection_settings(engine: Engine) -> None:
    """Foreign keys enforced, and writes ahead (WAL: a commit appends to one file, readers don't block)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per URL per process; short connect timeouts so an outage fails fast."""
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1] if "///" in url else ""
        if not database or database == ":memory:":
            engine = create_engine(url, future=True)  # one connection per thread: SQLAlchemy's default
        else:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            # A pool, as SQLAlchemy 2 gives file databases: 1.4's NullPool opened a new connection (and
            # ran the connect hooks) for every transaction, ~4% of the Rasa process's CPU under load.
            engine = create_engine(
                url,
                future=True,
                poolclass=QueuePool,
                pool_size=2,
                connect_args={"timeout": 5, "check_same_thread": False},
            )
        _sqlite_connection_settings(engine)
        return engine
    return create_engine(url, future=True, pool_pre_ping=True, connect_args={"connect_timeout": 3})


def default_url() -> str:
    return runtime().database_url


@lru_cache(maxsize=8)
def _session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=engine_for(url), future=True, expire_on_commit=False)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A transaction: committed when the block ends, rolled back if it raises."""
    session = _session_factory(url or default_url())()
    try:
        yield session
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def database_transaction(
    url: str | None = None, *, failure: str = "application database unavailable", conflicts_pass: bool = True
) -> Iterator[Session]:
    """`session_scope` whose database failures are logged and raised as `DatabaseUnavailable`.

    The log line is `failure` and the error's class name, nothing more: driver messages quote the
    statement's parameters, which can be a visitor's words or contact details. An IntegrityError is
    a conflict the caller decides about (a time just taken), so it passes through unless
    `conflicts_pass` is False. Errors that are not the database's (BookingNotFound…) pass through.
    """
    try:
        with session_scope(url) as session:
            yield session
    except SQLAlchemyError as error:
        if conflicts_pass and isinstance(error, IntegrityError):
            raise
        log.warning("%s (%s)", failure, type(error).__name__)
        raise DatabaseUnavailable(type(error).__name__) from None


Result = TypeVar("Result")
Fallback = TypeVar("Fallback")


def with_database(
    work: Callable[[Session], Result], fallback: Fallback, failure: str, url: str | None = None
) -> Result | Fallback:
    """`work(session)` in one transaction; `fallback` when the database fails (logged as `failure`).

    For writes and reads the caller can do without (a record, a routing hint): any database error,
    conflicts included, is logged by `database_transaction` and the caller carries on.
    """
    try:
        with database_transaction(url, failure=failure, conflicts_pass=False) as session:
            return work(session)
    except DatabaseUnavailable:
        return fallback


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", (url or default_url()).replace("%", "%%"))
    return config


def upgrade(url: str | None = None) -> None:
    """Bring the schema to the newest revision of every migration branch."""
    command.upgrade(alembic_config(url), "heads")


def main(argv: list[str]) -> int:
    if argv[:1] == ["upgrade"]:
        upgrade()
        print("database schema is up to date")
        return 0
    print("usage: python -m bot.db upgrade", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
