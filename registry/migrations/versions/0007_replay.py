"""Seen VIHF assertion IDs in the shared database: several nodes on one PostgreSQL refuse a replay whichever
node receives it (docs/vihf.md §7 step 10, docs/deployment.md). A SQLite node keeps them in its own
``replay.db`` and leaves this table empty.

Revision ID: 0007_replay
Revises: 0006_portal
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_replay"
down_revision = "0006_portal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seen_assertion",
        sa.Column("assertion_id", sa.String(256), primary_key=True),
        sa.Column("expires_us", sa.BigInteger, nullable=False),   # microseconds since the epoch, UTC
    )
    op.create_index("ix_seen_assertion_expiry", "seen_assertion", ["expires_us"])


def downgrade() -> None:
    op.drop_index("ix_seen_assertion_expiry", table_name="seen_assertion")
    op.drop_table("seen_assertion")
