"""What each registered object costs PostgreSQL to write, for the national-scale load (issue: >= 5,000
DocumentEntries/s through the bulk path).

Measured on the registry_scale benchmark (PostgreSQL 15, 10,000 entries, CPU of PostgreSQL's processes per
DocumentEntry in the COPY of its rows): 483 us with the foreign keys, 306 us without them; lz4 instead of
pglz for the stored XML (TOAST) takes off a further ~70 us, and reading it back is cheaper too.

- The foreign keys from the per-kind tables and ``object_value`` to ``registry_object``: PostgreSQL checks
  each child row with a trigger (a look-up and a row lock per row, ~7.5 rows per DocumentEntry). Every row of
  an object is written by ``_submission.insert_rows`` in the transaction that writes the object, and the
  registry never deletes a row (ITI-57 and the DMP's deletion change a status), so the keys guarded nothing
  that the transaction does not; their ON DELETE CASCADE had nothing to cascade. The registry's tests check
  that no row is left without its object.
- ``registry_object.xml`` is compressed with lz4 on PostgreSQL when the server was built with it, and kept in
  the row (STORAGE MAIN) rather than in the TOAST table: a DocumentEntry's XML (~6 KB) compresses to ~2.3 KB,
  just over the 2 KB at which PostgreSQL moves a value out of line, so a LeafClass answer paid one TOAST index
  look-up and page read per object on top of the row it had already read (at 1M entries: FindDocuments of
  100 documents p50 20 ms as LeafClass, 8 ms as ObjectRef).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# (table, column): the children of registry_object.
_CHILDREN = (("document_entry", "id"), ("submission_set", "id"), ("folder", "id"), ("association", "id"),
             ("object_value", "object_id"))
# SQLite's foreign keys have no names: batch mode names them with this convention to drop them.
_NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    bind = op.get_bind()
    for table, column in _CHILDREN:
        if bind.dialect.name == "postgresql":
            op.drop_constraint(f"{table}_{column}_fkey", table, type_="foreignkey")
        else:
            with op.batch_alter_table(table, naming_convention=_NAMING) as batch:
                batch.drop_constraint(f"fk_{table}_{column}_registry_object", type_="foreignkey")
    if bind.dialect.name == "postgresql" and bind.execute(sa.text(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")).scalar():
        op.execute("ALTER TABLE registry_object ALTER COLUMN xml SET COMPRESSION lz4")
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE registry_object ALTER COLUMN xml SET STORAGE MAIN")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE registry_object ALTER COLUMN xml SET COMPRESSION pglz, ALTER COLUMN xml SET STORAGE "
                   "EXTENDED")
    for table, column in _CHILDREN:
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(f"{table}_{column}_fkey" if bind.dialect.name == "postgresql" else
                                     f"fk_{table}_{column}_registry_object", "registry_object", [column], ["id"],
                                     ondelete="CASCADE")
