"""Staff console login attempts, counted per client address and per account name (rate limiting).

Revision ID: 0005_login_attempts
Revises: 0003_handoff
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_login_attempts"
down_revision = "0003_handoff"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_login_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    # Every check counts one key's attempts inside the window.
    op.create_index("ix_staff_login_attempts_key_at", "staff_login_attempts", ["key", "at"])


def downgrade() -> None:
    op.drop_index("ix_staff_login_attempts_key_at", "staff_login_attempts")
    op.drop_table("staff_login_attempts")
