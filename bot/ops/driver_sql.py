"""SQLAlchemy Core statements compiled once and run on the database driver's own cursor.

For the tracker store's per-message statements (the conversation's stamp, the new rows), SQLAlchemy's
execution around the driver call cost more than the database's own work: 41 against 17 us of CPU per
stamp query on SQLite. A `DriverStatement` keeps the SQL its dialect compiled and runs it on the cursor
of the same connection, inside the same transaction, with SQLAlchemy's own conversions of the parameters.
Statements whose results would need converting are refused (they keep the Core path).
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

import sqlalchemy as sa


class DriverStatement:
    def __init__(self, statement: Any, dialect: Any, column_keys: List[str] | None = None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        result_types = [column[3] for column in getattr(compiled, "_result_columns", [])]
        converts_results = any(kind.dialect_impl(dialect).result_processor(dialect, None) for kind in result_types)
        if converts_results:
            raise ValueError("statement's results need type conversions; run it through SQLAlchemy")
        self.sql = str(compiled)
        self.names = list(compiled.positiontup) if dialect.positional else None
        # The parameters' own conversions (a Float column's to_float), applied as SQLAlchemy applies them.
        self.processors: Dict[str, Any] = dict(compiled._bind_processors)
        self.driver_error: type[Exception] = dialect.dbapi.Error if dialect.dbapi is not None else Exception

    def _parameters(self, values: Dict[str, Any]) -> Any:
        if self.processors:
            values = {name: self.processors[name](value) if name in self.processors else value
                      for name, value in values.items()}
        return tuple(values[name] for name in self.names) if self.names is not None else values

    def one(self, connection: sa.engine.Connection, values: Dict[str, Any]) -> Sequence[Any]:
        """The statement's single result row."""
        parameters = self._parameters(values)
        cursor = connection.connection.cursor()
        try:
            cursor.execute(self.sql, parameters)
            row = cursor.fetchone()
            if row is None or cursor.fetchone() is not None:
                raise sa.exc.NoResultFound("expected exactly one row")
            return tuple(row)
        except self.driver_error as error:
            raise self._as_sqlalchemy_error(parameters, error) from error
        finally:
            cursor.close()

    def execute_many(self, connection: sa.engine.Connection, rows: List[Dict[str, Any]]) -> None:
        parameters = [self._parameters(row) for row in rows]
        cursor = connection.connection.cursor()
        try:
            cursor.executemany(self.sql, parameters)
        except self.driver_error as error:
            raise self._as_sqlalchemy_error(parameters, error) from error
        finally:
            cursor.close()

    def _as_sqlalchemy_error(self, parameters: Any, error: Exception) -> Exception:
        """The exception SQLAlchemy's own execution raises for this driver error (OperationalError, ...)."""
        return sa.exc.DBAPIError.instance(self.sql, parameters, error, self.driver_error)
