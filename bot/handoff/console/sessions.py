"""Server-side staff sessions: the cookie holds a random token, the database only its SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Tuple

from sqlalchemy.orm import Session

from bot.handoff.clock import Clock, as_utc
from bot.handoff.models import StaffAccount, StaffSession

COOKIE_NAME = "hl_staff_session"
LOGIN_CSRF_COOKIE = "hl_login_csrf"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def start(session: Session, clock: Clock, staff: StaffAccount) -> Tuple[str, StaffSession]:
    token = new_token()
    record = StaffSession(
        token_hash=_digest(token),
        staff_id=staff.id,
        csrf_token=new_token(),
        created_at=clock.now(),
        last_seen_at=clock.now(),
    )
    session.add(record)
    session.flush()
    return token, record


def find(
    session: Session, clock: Clock, token: str | None, idle_minutes: float, touch: bool = True
) -> StaffSession | None:
    """The live session for a cookie value; an idle or deactivated one is ended instead.

    Background polling passes touch=False, so an open tab alone never keeps a session alive.
    """
    if not token:
        return None
    record = session.query(StaffSession).filter_by(token_hash=_digest(token)).first()
    if record is None:
        return None
    idle = clock.now() - as_utc(record.last_seen_at)
    if idle > timedelta(minutes=idle_minutes) or not record.staff.active:
        session.delete(record)
        return None
    if touch:
        record.last_seen_at = clock.now()
    return record


def end(session: Session, token: str | None) -> None:
    if token:
        session.query(StaffSession).filter_by(token_hash=_digest(token)).delete()


def same_secret(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
