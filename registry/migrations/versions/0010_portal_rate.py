"""The sign-in rate limit of the patients' space in the database (docs/portal.md "Security"): its count per client
address was kept in each process's memory, so a node with ``--workers N``, or N nodes sharing one database, let
an address try N times as often as the limit says.

Revision ID: 0010_portal_rate
Revises: 0009_compact_keys
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_portal_rate"
down_revision = "0009_compact_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_rate",
        sa.Column("client", sa.String(64), primary_key=True),
        sa.Column("window_start", sa.String(32), nullable=False),
        sa.Column("hits", sa.Integer, nullable=False),
    )
    op.create_index("ix_portal_rate_window_start", "portal_rate", ["window_start"])


def downgrade() -> None:
    op.drop_table("portal_rate")
