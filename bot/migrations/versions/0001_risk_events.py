"""Risk events: one row per user message the safety component rated above `none`.

Revision ID: 0001_risk_events
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_risk_events"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "risk_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("conversation_id", sa.String(255), nullable=False, index=True),
        sa.Column("message_id", sa.String(255), nullable=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("categories", sa.String(255), nullable=False, server_default=""),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("conversation_id", "message_id", name="uq_risk_event_message"),
    )


def downgrade() -> None:
    op.drop_table("risk_events")
