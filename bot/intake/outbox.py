"""Delivers staff notices from the outbox table to a webhook, with retries.

`python -m bot.intake.outbox` runs the loop (the launcher starts it). Without INTAKE_WEBHOOK_URL it idles:
notices wait in the table until a URL is configured. A notice is marked delivered only after a 2xx.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import requests
from sqlalchemy import select

from bot.db import DatabaseUnavailable, database_transaction
from bot.intake.models import OutboxMessage

log = logging.getLogger("bot.intake.outbox")
MAX_BACKOFF_SECONDS = 300.0


@dataclass(frozen=True)
class OutboxSettings:
    webhook_url: str | None
    timeout_seconds: float = 5.0
    poll_seconds: float = 2.0
    base_backoff_seconds: float = 2.0
    batch_size: int = 20

    @classmethod
    def from_env(cls) -> OutboxSettings:
        return cls(
            webhook_url=os.environ.get("INTAKE_WEBHOOK_URL") or None,
            timeout_seconds=float(os.environ.get("INTAKE_WEBHOOK_TIMEOUT", "5")),
            poll_seconds=float(os.environ.get("INTAKE_OUTBOX_POLL_SECONDS", "2")),
            base_backoff_seconds=float(os.environ.get("INTAKE_OUTBOX_BACKOFF_SECONDS", "2")),
        )


def backoff(settings: OutboxSettings, attempts: int) -> timedelta:
    """Exponential, capped: a webhook down for an hour costs a dozen requests, not thousands."""
    return timedelta(seconds=min(MAX_BACKOFF_SECONDS, settings.base_backoff_seconds * 2 ** max(0, attempts - 1)))


def _post(settings: OutboxSettings, payload: dict) -> str | None:
    """None when delivered, else a short reason (status code or exception class; never the body)."""
    assert settings.webhook_url
    try:
        response = requests.post(settings.webhook_url, json=payload, timeout=settings.timeout_seconds)
    except requests.RequestException as error:
        return type(error).__name__
    return None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"


def deliver_due(settings: OutboxSettings, url: str | None = None, now: datetime | None = None) -> int:
    """Tries every notice that is due; returns how many were delivered."""
    if not settings.webhook_url:
        return 0
    moment = now or datetime.now(tz=timezone.utc)
    delivered = 0
    with database_transaction(url) as session:
        due = session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.delivered_at.is_(None), OutboxMessage.next_attempt_at <= moment)
            .order_by(OutboxMessage.id)
            .limit(settings.batch_size)
            # Several workers never send the same notice twice at once (PostgreSQL; SQLite ignores it).
            .with_for_update(skip_locked=True)
        ).scalars()
        for message in due:
            problem = _post(settings, message.payload)
            message.attempts += 1
            if problem is None:
                message.delivered_at = datetime.now(tz=timezone.utc)
                message.last_error = None
                delivered += 1
                log.info("staff notice delivered: outbox_id=%s attempts=%s", message.id, message.attempts)
            else:
                message.last_error = problem
                message.next_attempt_at = datetime.now(tz=timezone.utc) + backoff(settings, message.attempts)
                log.warning("staff notice not delivered (%s): outbox_id=%s", problem, message.id)
    return delivered


def pending_count(url: str | None = None) -> int:
    with database_transaction(url) as session:
        return len(session.execute(select(OutboxMessage.id).where(OutboxMessage.delivered_at.is_(None))).all())


def run_forever(settings: OutboxSettings, url: str | None = None) -> None:
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not settings.webhook_url:
        log.info("INTAKE_WEBHOOK_URL is not set: staff notices stay in the outbox table")
    while not stopping:
        with contextlib.suppress(DatabaseUnavailable):  # already logged; try again on the next round
            deliver_due(settings, url)
        time.sleep(settings.poll_seconds)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_forever(OutboxSettings.from_env())
    return 0


if __name__ == "__main__":
    sys.exit(main())
