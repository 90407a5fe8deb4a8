"""Handoff: staff accounts and sessions, tickets, audit log, notification outbox, watcher cursor.

Revision ID: 0003_handoff
Revises: 0001_risk_events
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_handoff"
down_revision = "0001_risk_events"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "staff_accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(80), nullable=False, unique=True),
        sa.Column("first_name", sa.String(80), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_login_at", TZ, nullable=True),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "staff_id", sa.Integer, sa.ForeignKey("staff_accounts.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_seen_at", TZ, nullable=False),
    )
    op.create_table(
        "handoff_tickets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("conversation_id", sa.String(255), nullable=False, index=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("risk_level", sa.String(16), nullable=True),
        sa.Column("priority", sa.Integer, nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("claimed_by_id", sa.Integer, sa.ForeignKey("staff_accounts.id"), nullable=True),
        sa.Column("claimed_at", TZ, nullable=True),
        sa.Column("closed_at", TZ, nullable=True),
        sa.Column("outcome_note", sa.Text, nullable=True),
        sa.Column("escalated_at", TZ, nullable=True),
        sa.Column("last_visitor_message_at", TZ, nullable=True),
        sa.Column("visitor_acknowledged_at", TZ, nullable=True),
        sa.Column("handed_back_at", TZ, nullable=True),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", TZ, nullable=False, index=True),
        sa.Column("staff_id", sa.Integer, sa.ForeignKey("staff_accounts.id"), nullable=True),
        sa.Column("staff_username", sa.String(80), nullable=False),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("ticket_id", sa.Integer, nullable=True, index=True),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("handoff_tickets.id"), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("delivered_at", TZ, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
    )
    op.create_table(
        "handoff_watcher_cursor",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("last_event_id", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "handoff_watcher_cursor",
        "notification_outbox",
        "audit_log",
        "handoff_tickets",
        "staff_sessions",
        "staff_accounts",
    ):
        op.drop_table(table)
