"""Risk events recorded for the staff side (the message text itself stays in the tracker store)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, Column, DateTime, Float, Integer, String, UniqueConstraint

from bot.db import Base


def utc_now() -> datetime:
    return datetime.now(tz=timezone.utc)


class RiskEvent(Base):
    __tablename__ = "risk_events"
    __table_args__ = (UniqueConstraint("conversation_id", "message_id", name="uq_risk_event_message"),)

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    message_id = Column(String(255), nullable=True)
    level = Column(String(16), nullable=False)
    score = Column(Float, nullable=False)
    categories = Column(String(255), nullable=False, default="")
    reasons = Column(JSON, nullable=False, default=list)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utc_now)
