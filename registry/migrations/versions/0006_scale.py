"""Optional hash partitioning of ``registry_object`` by patient on PostgreSQL (docs/registry-storage.md).

Chosen when this revision runs: ``Store.migrate(partitions=N)`` (``dmp init --partitions N``) makes
``registry_object`` a table ``PARTITION BY HASH (patient_key)`` with N partitions ``registry_object_p<i>``,
its rows (if any) copied over. Without it (and always on SQLite) nothing changes.

- Only ``registry_object`` is partitioned: it holds the stored XML and the patient index, most of the registry's
  bytes and every stored query's patient selection (``patient_key = ?`` prunes to one partition, where the
  partition's own ``ix_object_patient_kind_status`` finds the rows). The per-kind tables and ``object_value``
  are reached by object id from those rows (primary key / ``(object_id, attribute)`` look-ups) and carry no
  patient column to partition on.
- A partitioned table's unique indexes must contain the partition key, so the primary key ``(id)`` becomes the
  unique index ``(id, patient_key)``: a look-up by id alone probes that index in each partition. Registry-wide
  uniqueness of an entryUUID stays with the per-kind tables (every object has exactly one row in
  ``document_entry``, ``submission_set``, ``folder`` or ``association``, whose primary key is its id) and with
  the submission checks (``_checks``: an id already registered, of any kind, is refused).
- Associations have no patient (NULL): PostgreSQL hashes a NULL key to one partition, which holds them all (small
  rows: about 0.5 KB each, without an XML body of size).

Revision ID: 0006_scale
Revises: 0005
"""

import sqlalchemy as sa
from alembic import context, op

from registry._store import PARTITIONS_ATTRIBUTE

revision = "0006_scale"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = """
    id varchar(64) NOT NULL,
    lid varchar(64) NOT NULL,
    version integer NOT NULL,
    kind varchar(2) NOT NULL,
    status varchar(64) NOT NULL,
    patient_key varchar(256),
    unique_id varchar(128),
    submission_set_id varchar(64) NOT NULL,
    xml text NOT NULL
"""
_COLUMN_NAMES = "id, lid, version, kind, status, patient_key, unique_id, submission_set_id, xml"


def upgrade() -> None:
    partitions = int(context.config.attributes.get(PARTITIONS_ATTRIBUTE) or 0)
    if partitions <= 0:
        return
    if op.get_bind().dialect.name != "postgresql":
        raise ValueError("registry partitioning needs PostgreSQL (SQLite has no partitioned tables)")
    op.execute(f"CREATE TABLE registry_object_partitioned ({_COLUMNS}) PARTITION BY HASH (patient_key)")
    _xml_storage("registry_object_partitioned")
    for i in range(partitions):
        name = f"registry_object_p{i}"
        op.execute(f"CREATE TABLE {name} PARTITION OF registry_object_partitioned "
                   f"FOR VALUES WITH (MODULUS {partitions}, REMAINDER {i})")
        _xml_storage(name)
    _move_rows_and_swap()
    op.execute("CREATE UNIQUE INDEX ix_object_id ON registry_object (id, patient_key)")
    _secondary_indexes()


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql" or not _is_partitioned():
        return
    op.execute(f"CREATE TABLE registry_object_partitioned ({_COLUMNS}, CONSTRAINT registry_object_pkey PRIMARY KEY (id))")
    _xml_storage("registry_object_partitioned")
    _move_rows_and_swap()
    _secondary_indexes()


def _is_partitioned() -> bool:
    return bool(op.get_bind().execute(sa.text(
        "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'registry_object'::regclass")).scalar())


def _move_rows_and_swap() -> None:
    """Copy every row into the new table, drop the old one (and its indexes), give the new one its name. The
    indexes are built afterwards: once, on the loaded rows."""
    op.execute(f"INSERT INTO registry_object_partitioned ({_COLUMN_NAMES}) "
               f"SELECT {_COLUMN_NAMES} FROM registry_object")
    op.execute("DROP TABLE registry_object")
    op.execute("ALTER TABLE registry_object_partitioned RENAME TO registry_object")


def _secondary_indexes() -> None:
    # As migrations 0001 and 0004 left them; on a partitioned table each partition gets its own.
    op.execute("CREATE INDEX ix_object_patient_kind_status ON registry_object (patient_key, kind, status)")
    op.execute("CREATE INDEX ix_object_unique_id ON registry_object (unique_id) WHERE unique_id IS NOT NULL")
    op.execute("CREATE INDEX ix_object_lid ON registry_object (lid, version) WHERE version > 1")


def _xml_storage(table: str) -> None:
    """The stored XML as migration 0003 keeps it: lz4 when the server has it, in the row (STORAGE MAIN)."""
    bind = op.get_bind()
    if bind.execute(sa.text(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")).scalar():
        op.execute(f"ALTER TABLE {table} ALTER COLUMN xml SET COMPRESSION lz4")
    op.execute(f"ALTER TABLE {table} ALTER COLUMN xml SET STORAGE MAIN")
