"""The registry's keys in a compact stored form (docs/registry-storage.md, ``registry._compact_keys``): every
column that holds an object id becomes binary, a canonical ``urn:uuid:`` id its 16 bytes (any other id a marker
byte and its text); ``registry_object.status`` and ``object_value.attribute`` hold one-letter codes for the
values the registry knows (any other value ``~`` and its text). What is read back is the text stored before.

Existing rows are converted in place: on PostgreSQL with one ``ALTER TABLE ... TYPE ... USING`` per table (one
rewrite of the table and its indexes; on a partitioned ``registry_object`` the partitions follow their parent),
the mapping written in SQL; on SQLite each value is converted by ``registry._compact_keys`` (registered as SQL
functions on the connection), then the table is rebuilt with its new column types.

Revision ID: 0009_compact_keys
Revises: 0008_scale
"""

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

from registry._compact_keys import ATTRIBUTE_CODES, STATUS_CODES, Codes, decode_id, encode_id

revision = "0009_compact_keys"
down_revision = "0008_scale"
branch_labels = None
depends_on = None

_IDS = {
    "registry_object": ("id", "lid", "submission_set_id"),
    "document_entry": ("id",),
    "submission_set": ("id",),
    "folder": ("id",),
    "association": ("id", "source", "target"),
    "object_value": ("object_id",),
    "submission_origin": ("submission_set_id",),
}
_CODED = {"registry_object": ("status", STATUS_CODES, 64), "object_value": ("attribute", ATTRIBUTE_CODES, 32)}

_CANONICAL = "'^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in _IDS.items():
            changes = [f"ALTER COLUMN {c} TYPE bytea USING {_pg_encode_id(c)}" for c in columns]
            if table in _CODED:
                column, codes, width = _CODED[table]
                changes.append(f"ALTER COLUMN {column} TYPE varchar({width + 1}) USING {_pg_encode(column, codes)}")
            op.execute(f"ALTER TABLE {table} {', '.join(changes)}")
        return
    _sqlite_convert(encode_id, lambda codes: codes.encode, id_type=sa.LargeBinary(), widen=1)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in _IDS.items():
            changes = [f"ALTER COLUMN {c} TYPE varchar(64) USING {_pg_decode_id(c)}" for c in columns]
            if table in _CODED:
                column, codes, width = _CODED[table]
                changes.append(f"ALTER COLUMN {column} TYPE varchar({width}) USING {_pg_decode(column, codes)}")
            op.execute(f"ALTER TABLE {table} {', '.join(changes)}")
        return
    _sqlite_convert(decode_id, lambda codes: codes.decode, id_type=sa.String(64), widen=0)


# --- PostgreSQL: the mapping of registry._compact_keys in SQL -------------------------------------------------


def _pg_encode_id(c: str) -> str:
    return (f"CASE WHEN {c} ~ {_CANONICAL} THEN decode(replace(substr({c}, 10), '-', ''), 'hex') "
            f"WHEN octet_length({c}) = 15 THEN '\\x0101'::bytea || convert_to({c}, 'UTF8') "
            f"ELSE '\\x00'::bytea || convert_to({c}, 'UTF8') END")


def _pg_decode_id(c: str) -> str:
    h = f"encode({c}, 'hex')"
    return (f"CASE WHEN length({c}) = 16 THEN 'urn:uuid:' || substr({h}, 1, 8) || '-' || substr({h}, 9, 4) || '-' "
            f"|| substr({h}, 13, 4) || '-' || substr({h}, 17, 4) || '-' || substr({h}, 21) "
            f"WHEN get_byte({c}, 0) = 1 THEN convert_from(substr({c}, 3), 'UTF8') "
            f"ELSE convert_from(substr({c}, 2), 'UTF8') END")


def _pg_encode(c: str, codes: Codes) -> str:
    whens = " ".join(f"WHEN {_literal(t)} THEN {_literal(k)}" for t, k in codes.code_of.items())
    return f"CASE {c} {whens} ELSE '~' || {c} END"


def _pg_decode(c: str, codes: Codes) -> str:
    whens = " ".join(f"WHEN {_literal(k)} THEN {_literal(t)}" for k, t in codes.text_of.items())
    return f"CASE WHEN left({c}, 1) = '~' THEN substr({c}, 2) ELSE CASE {c} {whens} END END"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- SQLite ---------------------------------------------------------------------------------------------------


def _sqlite_convert(convert_id: Callable[[Any], Any], convert_code: Callable[[Codes], Callable[[str], str]], *,
                    id_type: sa.types.TypeEngine[Any], widen: int) -> None:
    """Convert every value in place (SQLite keeps a value's own storage class whatever the column's declared
    type, and an id's two forms never compare equal: no unique index trips midway), then rebuild each table
    with the new declared types (alembic's batch mode copies the values, already converted, unchanged)."""
    sqlite = op.get_bind().connection.driver_connection
    sqlite.create_function("dmp_convert_id", 1, convert_id, deterministic=True)
    for name, codes in (("dmp_convert_status", STATUS_CODES), ("dmp_convert_attribute", ATTRIBUTE_CODES)):
        sqlite.create_function(name, 1, convert_code(codes), deterministic=True)
    for table, columns in _IDS.items():
        sets = [f"{c} = dmp_convert_id({c})" for c in columns]
        if table in _CODED:
            column = _CODED[table][0]
            sets.append(f"{column} = dmp_convert_{column}({column})")
        op.execute(f"UPDATE {table} SET {', '.join(sets)}")  # noqa: S608 (constant names)
        with op.batch_alter_table(table) as batch:
            for c in columns:
                batch.alter_column(c, type_=id_type)
            if table in _CODED:
                column, _, width = _CODED[table]
                batch.alter_column(column, type_=sa.String(width + widen))
