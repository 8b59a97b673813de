"""Initial registry schema: patients, registry objects, per-kind attributes, multi-valued attributes.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _object_fk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("id", sa.String(64), sa.ForeignKey("registry_object.id", ondelete="CASCADE"), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "patient",
        sa.Column("patient_key", sa.String(256), primary_key=True),
        sa.Column("created_at", sa.String(14), nullable=False),
        sa.Column("closed_at", sa.String(14), nullable=True),
    )
    op.create_table(
        "registry_object",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("lid", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(2), nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("patient_key", sa.String(256), nullable=True),
        sa.Column("unique_id", sa.String(128), nullable=True),
        sa.Column("submission_set_id", sa.String(64), nullable=False),
        sa.Column("xml", sa.Text, nullable=False),
    )
    op.create_index("ix_object_patient_kind_status", "registry_object", ["patient_key", "kind", "status"])
    op.create_index("ix_object_unique_id", "registry_object", ["unique_id"])
    op.create_index("ix_object_lid", "registry_object", ["lid", "version"])
    op.create_table(
        "document_entry",
        _object_fk(),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("mime_type", sa.String(256), nullable=False),
        sa.Column("hash", sa.String(40), nullable=True),
        sa.Column("size", sa.BigInteger, nullable=True),
        sa.Column("repository_unique_id", sa.String(64), nullable=True),
        sa.Column("creation_time", sa.String(14), nullable=True),
        sa.Column("service_start_time", sa.String(14), nullable=True),
        sa.Column("service_stop_time", sa.String(14), nullable=True),
        *[
            sa.Column(f"{name}_{part}", sa.String(256), nullable=True)
            for name in ("class", "type", "format", "hcft", "practice")
            for part in ("code", "scheme")
        ],
    )
    op.create_table(
        "submission_set",
        _object_fk(),
        sa.Column("source_id", sa.String(64), nullable=False),
        sa.Column("submission_time", sa.String(14), nullable=True),
        sa.Column("content_type_code", sa.String(256), nullable=True),
        sa.Column("content_type_scheme", sa.String(256), nullable=True),
    )
    op.create_table(
        "folder",
        _object_fk(),
        sa.Column("last_update_time", sa.String(14), nullable=False),
    )
    op.create_table(
        "association",
        _object_fk(),
        sa.Column("association_type", sa.String(128), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("submission_set_status", sa.String(32), nullable=True),
    )
    op.create_index("ix_association_source", "association", ["source"])
    op.create_index("ix_association_target", "association", ["target"])
    op.create_table(
        "object_value",
        sa.Column("object_id", sa.String(64), sa.ForeignKey("registry_object.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("attribute", sa.String(32), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("scheme", sa.String(256), nullable=True),
    )
    op.create_index("ix_object_value_object", "object_value", ["object_id"])
    op.create_index("ix_object_value_lookup", "object_value", ["attribute", "value"])


def downgrade() -> None:
    for table in ("object_value", "association", "folder", "submission_set", "document_entry",
                  "registry_object", "patient"):
        op.drop_table(table)
