"""Intake calls: slots, bookings, contact preferences, staff outbox.

Revision ID: 0002_intake
Revises: 0001_risk_events
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_intake"
down_revision = "0001_risk_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intake_slots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("minutes", sa.Integer, nullable=False),
        sa.UniqueConstraint("starts_at", name="uq_intake_slot_start"),
    )
    op.create_table(
        "intake_bookings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(12), nullable=False),
        sa.Column("slot_id", sa.Integer, sa.ForeignKey("intake_slots.id"), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("care_for", sa.String(32), nullable=False),
        sa.Column("age", sa.Integer, nullable=False),
        sa.Column("first_name", sa.String(80), nullable=False),
        sa.Column("last_name", sa.String(80), nullable=True),
        sa.Column("guardian_name", sa.String(160), nullable=True),
        sa.Column("guardian_contact", sa.String(254), nullable=True),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("insurance", sa.String(80), nullable=False),
        sa.Column("insurance_accepted", sa.Boolean, nullable=False),
        sa.Column("care_type", sa.String(40), nullable=False),
        sa.Column("preferences", sa.JSON, nullable=False),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("code", name="uq_intake_booking_code"),
        # The guarantee against double booking: one live booking per slot, enforced by the database.
        sa.UniqueConstraint("slot_id", name="uq_intake_booking_slot"),
    )
    op.create_table(
        "intake_contact_preferences",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("booking_id", sa.Integer, sa.ForeignKey("intake_bookings.id", ondelete="CASCADE"), nullable=False),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("preferred_method", sa.String(8), nullable=False),
        sa.Column("ok_to_leave_message", sa.Boolean, nullable=False),
        sa.UniqueConstraint("booking_id", name="uq_intake_contact_booking"),
    )
    op.create_table(
        "intake_outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_intake_outbox_next_attempt_at", "intake_outbox", ["next_attempt_at"])
    op.create_index("ix_intake_outbox_delivered_at", "intake_outbox", ["delivered_at"])


def downgrade() -> None:
    op.drop_index("ix_intake_outbox_delivered_at", "intake_outbox")
    op.drop_index("ix_intake_outbox_next_attempt_at", "intake_outbox")
    op.drop_table("intake_outbox")
    op.drop_table("intake_contact_preferences")
    op.drop_table("intake_bookings")
    op.drop_table("intake_slots")
