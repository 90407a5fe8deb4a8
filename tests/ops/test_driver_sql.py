"""Statements run on the driver's cursor give what SQLAlchemy's own execution gives (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

from bot.ops.driver_sql import DriverStatement
from tests.db_urls import empty_database

METADATA = sa.MetaData()
EVENTS = sa.Table(
    "driver_events", METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("timestamp", sa.Float),
    sa.Column("data", sa.Text),
)
STAMP = sa.select(sa.func.count(EVENTS.c.id), sa.func.max(EVENTS.c.id)).where(
    EVENTS.c.sender_id == sa.bindparam("sender_id")
)
ROWS = [{"sender_id": "a", "timestamp": 1, "data": "x"}, {"sender_id": "a", "timestamp": None, "data": None},
        {"sender_id": "b", "timestamp": 2.5, "data": "é ' \"; DROP TABLE driver_events; --"}]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.engine.Engine]:
    for url in empty_database(request.param, tmp_path, "driversql"):
        engine = sa.create_engine(url, future=True)
        METADATA.create_all(engine)
        yield engine
        engine.dispose()


def test_rows_and_stamps_are_sqlalchemys(engine: sa.engine.Engine) -> None:
    columns = ["sender_id", "timestamp", "data"]
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            DriverStatement(EVENTS.insert(), engine.dialect, column_keys=columns).execute_many(connection, ROWS)
        else:
            connection.execute(EVENTS.insert(), ROWS)  # the tracker store inserts through SQLAlchemy here
        connection.execute(EVENTS.insert(), ROWS)  # the same rows again through SQLAlchemy
    with engine.connect() as connection:
        stored = connection.execute(sa.select(EVENTS.c.sender_id, EVENTS.c.timestamp, EVENTS.c.data)
                                    .order_by(EVENTS.c.id)).all()
        assert stored[:3] == stored[3:]  # the same values, an int timestamp stored as a float either way
        assert isinstance(stored[0].timestamp, float)
        stamp = DriverStatement(STAMP, engine.dialect)
        for sender in ("a", "b", "nobody"):
            assert stamp.one(connection, {"sender_id": sender}) == tuple(
                connection.execute(STAMP, {"sender_id": sender}).one()
            )


def test_statements_whose_results_need_converting_are_refused(engine: sa.engine.Engine) -> None:
    dated = sa.Table("dated", sa.MetaData(), sa.Column("at", sa.DateTime(timezone=True)))
    if engine.dialect.name == "sqlite":  # SQLite keeps datetimes as text that SQLAlchemy parses
        with pytest.raises(ValueError, match="run it through SQLAlchemy"):
            DriverStatement(sa.select(dated.c.at), engine.dialect)
    with pytest.raises(sa.exc.NoResultFound), engine.connect() as connection:
        below = sa.select(EVENTS.c.id).where(EVENTS.c.id < sa.bindparam("below"))
        DriverStatement(below, engine.dialect).one(connection, {"below": 0})


def test_a_driver_error_is_raised_as_sqlalchemys_error(engine: sa.engine.Engine) -> None:
    missing = sa.Table("no_such_table", sa.MetaData(), sa.Column("id", sa.Integer), sa.Column("name", sa.String))
    with engine.connect() as connection:
        stamp = DriverStatement(sa.select(sa.func.count(missing.c.id)), engine.dialect)
        with pytest.raises(sa.exc.ProgrammingError if engine.dialect.name == "postgresql" else sa.exc.OperationalError):
            stamp.one(connection, {})
