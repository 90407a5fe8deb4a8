"""The audit log: who did what, when. Written in the same transaction as the action it records."""

from __future__ import annotations

from typing import Any, Dict, List

from sqlalchemy.orm import Session

from bot.handoff.clock import Clock
from bot.handoff.models import AuditEntry, StaffAccount

SYSTEM = "system"


def record(
    session: Session,
    clock: Clock,
    actor: StaffAccount | None,
    action: str,
    ticket_id: int | None = None,
    detail: Dict[str, Any] | None = None,
    username: str | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        at=clock.now(),
        staff_id=actor.id if actor else None,
        staff_username=actor.username if actor else (username or SYSTEM),
        action=action,
        ticket_id=ticket_id,
        detail=detail or {},
    )
    session.add(entry)
    return entry


def latest(session: Session, limit: int = 200) -> List[AuditEntry]:
    return session.query(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).all()
