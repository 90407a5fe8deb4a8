"""Handoff: which tracker events the staff side has already acted on (redelivered events are skipped).

Revision ID: 0005_handoff_handled_events
Revises: 0003_handoff
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_handoff_handled_events"
down_revision = "0003_handoff"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handoff_handled_events",
        # The event's id in Rasa's tracker store (`events.id`): the same whichever source delivered it.
        # With the conversation id, so a recreated tracker database (ids from 1 again) cannot collide.
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("conversation_id", sa.String(255), primary_key=True),
        sa.Column("source", sa.String(16), nullable=False),
        # The Rasa process that published it (broker only): where the staff side's messages must go.
        sa.Column("publisher", sa.String(64), nullable=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("handoff_handled_events")
