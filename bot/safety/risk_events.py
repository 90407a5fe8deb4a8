"""Turn a conversation's risk turns into rows of the application database's `risk_events` table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from bot.safety.models import RiskEvent, utc_now

STICKY_REPLIES = {"utter_risk_acute", "utter_risk_imminent", "utter_risk_concern"}


@dataclass(frozen=True)
class RiskTurn:
    conversation_id: str
    message_id: str | None
    level: str
    score: float
    categories: str
    reasons: List[str]


def risk_turns(conversation_id: str, events: Iterable[Dict[str, Any]]) -> List[RiskTurn]:
    """Risk turns in a list of serialized tracker events.

    A user message counts when the safety component rated it above `none`, or when it was a
    method-adjacent message that the sticky-risk rules answered with a crisis reply.
    """
    turns: List[RiskTurn] = []
    pending: Dict[str, Any] | None = None
    for event in events:
        kind = event.get("event")
        if kind == "user":
            pending = None
            parse_data = event.get("parse_data") or {}
            safety = parse_data.get("safety") or {}
            level = safety.get("level", "none")
            if level != "none":
                turns.append(_turn(conversation_id, event, level, safety))
            elif safety.get("means_adjacent"):
                pending = event
        elif kind == "action" and pending is not None and event.get("name") in STICKY_REPLIES:
            safety = dict((pending.get("parse_data") or {}).get("safety") or {})
            safety["reasons"] = [*safety.get("reasons", []), "sticky:method-adjacent after an earlier risk turn"]
            safety["categories"] = [*safety.get("categories", []), "means_adjacent"]
            turns.append(_turn(conversation_id, pending, event["name"].removeprefix("utter_risk_"), safety))
            pending = None
    return turns


def _turn(conversation_id: str, event: Dict[str, Any], level: str, safety: Dict[str, Any]) -> RiskTurn:
    return RiskTurn(
        conversation_id=conversation_id,
        message_id=event.get("message_id"),
        level=level,
        score=float(safety.get("score", 0.0)),
        categories=",".join(safety.get("categories", []))[:255],
        reasons=list(safety.get("reasons", [])),
    )


def record(turns: List[RiskTurn], database_url: str) -> int | None:
    """Insert the turns not stored yet (one row per message); how many were added, None if the database failed.

    A failure is logged (without the turns' text) and nothing is raised: the caller sends the turns again
    with the conversation's next save.
    """
    if not turns:
        return 0
    from bot.db import with_database

    return with_database(
        lambda session: _add_new(session, turns),
        None,
        f"could not record {len(turns)} risk event(s) in the application database",
        database_url,
    )


def _add_new(session: Session, turns: List[RiskTurn]) -> int:
    if session.get_bind().dialect.name not in ("sqlite", "postgresql") or any(t.message_id is None for t in turns):
        return _add_new_after_looking(session, turns)  # NULL message ids never conflict: look first
    # One statement per turn that skips a (conversation, message) already stored: the ORM's look-up, unit
    # of work and flush cost ~1 ms of CPU per turn, in the Rasa process. SQLAlchemy 1.4 compiles its
    # dialects' on-conflict inserts anew for every call, so this is SQL text (the same in both).
    added = 0
    for turn in turns:
        added += max(0, session.execute(INSERT_IGNORING_DUPLICATES, _row(turn)).rowcount)
    return added


INSERT_IGNORING_DUPLICATES = text(
    "INSERT INTO risk_events (conversation_id, message_id, level, score, categories, reasons, created_at) "
    "VALUES (:conversation_id, :message_id, :level, :score, :categories, :reasons, :created_at) "
    "ON CONFLICT (conversation_id, message_id) DO NOTHING"  # uq_risk_event_message
).bindparams(
    bindparam("reasons", type_=RiskEvent.__table__.c.reasons.type),
    bindparam("created_at", type_=RiskEvent.__table__.c.created_at.type),
)


def _row(turn: RiskTurn) -> Dict[str, Any]:
    return {
        "conversation_id": turn.conversation_id,
        "message_id": turn.message_id,
        "level": turn.level,
        "score": turn.score,
        "categories": turn.categories,
        "reasons": turn.reasons,
        "created_at": utc_now(),
    }


def _add_new_after_looking(session: Session, turns: List[RiskTurn]) -> int:
    added = 0
    conversation_ids = {turn.conversation_id for turn in turns}
    stored = {
        (row.conversation_id, row.message_id)
        for row in session.query(RiskEvent.conversation_id, RiskEvent.message_id).filter(
            RiskEvent.conversation_id.in_(conversation_ids)
        )
    }
    for turn in turns:
        if (turn.conversation_id, turn.message_id) in stored:
            continue
        stored.add((turn.conversation_id, turn.message_id))
        session.add(RiskEvent(**_row(turn)))
        added += 1
    return added
