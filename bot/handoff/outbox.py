"""Delivers queued notifications to the webhook, retrying with back-off; runs off the visitor's turn."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Callable, Dict

import requests
from sqlalchemy.orm import Session

from bot.handoff.clock import Clock
from bot.handoff.models import OutboxMessage

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 300.0
Poster = Callable[..., Any]


def backoff_seconds(attempts: int) -> float:
    """2, 4, 8 … seconds, capped at five minutes: an outage of hours is survived without hammering."""
    return float(min(MAX_BACKOFF_SECONDS, 2 ** max(1, attempts)))


def deliver_due(
    session: Session, clock: Clock, webhook_url: str, timeout: float = 5.0, post: Poster = requests.post
) -> Dict[str, int]:
    """Tries every notification whose time has come once; returns counts for logs and tests."""
    counts = {"delivered": 0, "failed": 0}
    if not webhook_url:
        return counts
    due = (
        session.query(OutboxMessage)
        .filter(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= clock.now())
        .order_by(OutboxMessage.id)
        .with_for_update(skip_locked=True)
        .limit(50)
        .all()
    )
    for message in due:
        message.attempts += 1
        try:
            response = post(webhook_url, json=message.payload, timeout=timeout)
            if not 200 <= response.status_code < 300:
                raise RuntimeError(f"webhook answered HTTP {response.status_code}")
        except Exception as error:
            message.last_error = str(error)[:500]
            message.next_attempt_at = clock.now() + timedelta(seconds=backoff_seconds(message.attempts))
            counts["failed"] += 1
            log.warning("notification %s not delivered (attempt %s): %s", message.id, message.attempts, error)
            continue
        message.status, message.delivered_at, message.last_error = "delivered", clock.now(), None
        counts["delivered"] += 1
    return counts
