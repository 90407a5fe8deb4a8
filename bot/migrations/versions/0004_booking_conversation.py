"""Intake bookings remember the Rasa conversation (sender id) they were made in, for the staff console.

Revision ID: 0004_booking_conversation
Revises: 0002_intake
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_booking_conversation"
down_revision = "0002_intake"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: bookings made before this revision have no known conversation.
    op.add_column("intake_bookings", sa.Column("conversation_id", sa.String(255), nullable=True))
    op.create_index("ix_intake_bookings_conversation_id", "intake_bookings", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_intake_bookings_conversation_id", "intake_bookings")
    # batch mode: SQLite can only drop a column by copying the table.
    with op.batch_alter_table("intake_bookings") as batch:
        batch.drop_column("conversation_id")
