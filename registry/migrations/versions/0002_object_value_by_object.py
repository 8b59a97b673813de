"""Multi-valued attributes looked up by (object, attribute).

Stored queries test them with ``EXISTS (... WHERE object_id = <row> AND attribute = ? AND <value test>)``
(eventCodeList, confidentialityCode, authorPerson, referenceIdList, Folder codeList). With only
``(object_id)`` and ``(attribute, value)`` indexes, SQLite (which has no statistics unless ANALYZE is run)
chose ``(attribute)`` for that subquery: every candidate row then scanned all values of the attribute in the
registry, so FindDocuments with an eventCodeList took ~0.1 s at 3,000 entries and grew with the registry.
``(object_id, attribute)`` answers the subquery with two equalities, and replaces ``(object_id)`` (its prefix:
what the foreign key's ON DELETE CASCADE needs). ``(attribute, value)`` stays for the multi-patient queries.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_object_value_object_attribute", "object_value", ["object_id", "attribute"])
    op.drop_index("ix_object_value_object", table_name="object_value")


def downgrade() -> None:
    op.create_index("ix_object_value_object", "object_value", ["object_id"])
    op.drop_index("ix_object_value_object_attribute", table_name="object_value")
