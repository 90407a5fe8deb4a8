"""Database URLs for tests: a fresh SQLite file, and a fresh PostgreSQL database on the local server."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def postgres_database(prefix: str) -> Iterator[str]:
    """Creates a uniquely named database, yields its URL, drops it afterwards."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        admin.dispose()
        pytest.skip(f"PostgreSQL is not running at {POSTGRES_ADMIN_URL}: {error.orig}")
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def empty_database(kind: str, tmp_path: Path, prefix: str) -> Iterator[str]:
    """A fresh database without any tables: "sqlite" (a file) or "postgresql" (dropped afterwards)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
    else:
        yield from postgres_database(prefix)


def migrated_database(kind: str, tmp_path: Path, prefix: str) -> Iterator[str]:
    """A fresh application database with every migration applied: "sqlite" (a file) or "postgresql"."""
    from bot.db import engine_for, upgrade

    for url in empty_database(kind, tmp_path, prefix):
        upgrade(url)
        yield url
        engine_for(url).dispose()
