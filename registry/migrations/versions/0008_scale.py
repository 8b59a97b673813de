"""The registry at national size (docs/registry-storage.md): the compact stored form of the XML, and optional
hash partitioning of ``registry_object`` by patient on PostgreSQL.

Stored form: ``registry_object.xml`` becomes binary, each object's XML text compressed against a dictionary of
XDS boilerplate (``registry._stored_form``); existing rows are re-encoded. The text read back is the text
stored before, byte for byte. On PostgreSQL the column is STORAGE EXTERNAL: the value is compressed already
(PostgreSQL's lz4 would only spend CPU on it), and a DocumentEntry's row is small enough (~1.1 KB) to stay in
the table page (migration 0003's concern).

Partitioning is chosen when this revision runs: ``Store.migrate(partitions=N)`` (``dmp init --partitions N``) makes
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

Revision ID: 0008_scale
Revises: 0007_replay
"""

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from registry._store import PARTITIONS_ATTRIBUTE
from registry._stored_form import decode, encode

revision = "0008_scale"
down_revision = "0007_replay"
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
    xml bytea NOT NULL
"""
_COLUMN_NAMES = "id, lid, version, kind, status, patient_key, unique_id, submission_set_id, xml"


_CHUNK = 2000


def upgrade() -> None:
    _convert_xml(encode, sa.LargeBinary)
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
    if op.get_bind().dialect.name == "postgresql" and _is_partitioned():
        op.execute(f"CREATE TABLE registry_object_partitioned ({_COLUMNS}, "
                   "CONSTRAINT registry_object_pkey PRIMARY KEY (id))")
        _xml_storage("registry_object_partitioned")
        _move_rows_and_swap()
        _secondary_indexes()
    _convert_xml(decode, sa.Text)
    if op.get_bind().dialect.name == "postgresql":  # as migration 0003 left the text
        if _has_lz4():
            op.execute("ALTER TABLE registry_object ALTER COLUMN xml SET COMPRESSION lz4")
        op.execute("ALTER TABLE registry_object ALTER COLUMN xml SET STORAGE MAIN")


def _convert_xml(convert: Callable[[Any], Any], new_type: type[sa.types.TypeEngine[Any]]) -> None:
    """Rewrite ``registry_object.xml`` with ``convert`` applied to every value, the column typed ``new_type``:
    a new column filled in chunks of rows (by id), the old one dropped, the new one renamed."""
    bind = op.get_bind()
    op.add_column("registry_object", sa.Column("xml_converted", new_type, nullable=True))
    table = sa.table("registry_object", sa.column("id", sa.String), sa.column("xml"),
                     sa.column("xml_converted", new_type))
    last = ""
    while True:
        rows = bind.execute(sa.select(table.c.id, table.c.xml).where(table.c.id > last).order_by(table.c.id)
                            .limit(_CHUNK)).all()
        if not rows:
            break
        bind.execute(sa.update(table).where(table.c.id == sa.bindparam("b_id"))
                     .values(xml_converted=sa.bindparam("b_value")),
                     [{"b_id": r.id, "b_value": convert(r.xml)} for r in rows])
        last = rows[-1].id
    with op.batch_alter_table("registry_object") as batch:
        batch.drop_column("xml")
        batch.alter_column("xml_converted", new_column_name="xml", nullable=False, existing_type=new_type)
    if bind.dialect.name == "postgresql" and new_type is sa.LargeBinary:
        op.execute("ALTER TABLE registry_object ALTER COLUMN xml SET STORAGE EXTERNAL")


def _is_partitioned() -> bool:
    return bool(op.get_bind().execute(sa.text(
        "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'registry_object'::regclass")).scalar())


def _move_rows_and_swap() -> None:
    """Copy every row into the new table, drop the old one (and its indexes), give the new one its name. The
    indexes are built afterwards: once, on the loaded rows."""
    op.execute(f"INSERT INTO registry_object_partitioned ({_COLUMN_NAMES}) "  # noqa: S608 (constant names)
               f"SELECT {_COLUMN_NAMES} FROM registry_object")
    op.execute("DROP TABLE registry_object")
    op.execute("ALTER TABLE registry_object_partitioned RENAME TO registry_object")


def _secondary_indexes() -> None:
    # As migrations 0001 and 0004 left them; on a partitioned table each partition gets its own.
    op.execute("CREATE INDEX ix_object_patient_kind_status ON registry_object (patient_key, kind, status)")
    op.execute("CREATE INDEX ix_object_unique_id ON registry_object (unique_id) WHERE unique_id IS NOT NULL")
    op.execute("CREATE INDEX ix_object_lid ON registry_object (lid, version) WHERE version > 1")


def _xml_storage(table: str) -> None:
    """The stored form compressed already: no compression by PostgreSQL (see the module's docstring)."""
    op.execute(f"ALTER TABLE {table} ALTER COLUMN xml SET STORAGE EXTERNAL")


def _has_lz4() -> bool:
    return bool(op.get_bind().execute(sa.text(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")).scalar())
