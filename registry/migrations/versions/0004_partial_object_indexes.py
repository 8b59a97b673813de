"""Index only the registry objects a look-up can find.

- ``ix_object_lid`` (lid, version): a first version's logical id is its own id (ITI TF-3 §4.1.6: the lid of
  a new object is its entryUUID), so the primary key already finds it; only later versions (ITI-57) need
  this index. Look-ups by lid ask for ``id IN (lids) OR (version > 1 AND lid IN (lids))``.
- ``ix_object_unique_id``: Associations have no uniqueId (NULL): 40% of the rows, none ever looked up.

Measured on the registry_scale corpus (2.5 registry objects per DocumentEntry, PostgreSQL 15, 20,000 entries):
the two indexes went from 373 to 118 bytes per DocumentEntry (ix_object_lid 244 -> 0, ix_object_unique_id
129 -> 118; the registry holds ~6.8 KB per DocumentEntry), and PostgreSQL's CPU per DocumentEntry in the bulk
load from 382-393 to 346-377 us (10,000 entries, A/B, two runs each).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_object_lid", table_name="registry_object")
    op.create_index("ix_object_lid", "registry_object", ["lid", "version"],
                    postgresql_where=sa.text("version > 1"), sqlite_where=sa.text("version > 1"))
    op.drop_index("ix_object_unique_id", table_name="registry_object")
    op.create_index("ix_object_unique_id", "registry_object", ["unique_id"],
                    postgresql_where=sa.text("unique_id IS NOT NULL"), sqlite_where=sa.text("unique_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_object_unique_id", table_name="registry_object")
    op.create_index("ix_object_unique_id", "registry_object", ["unique_id"])
    op.drop_index("ix_object_lid", table_name="registry_object")
    op.create_index("ix_object_lid", "registry_object", ["lid", "version"])
