"""Time as a dependency, so escalation timing and idle timeouts can be tested without sleeping."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(tz=timezone.utc)


class ManualClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 15, 0, tzinfo=timezone.utc)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored here is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
