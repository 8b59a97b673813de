"""Tables of the registry store (SQLAlchemy Core). The schema is owned by Alembic migrations in
``registry/migrations``; these definitions must match the latest revision (a test checks it).

Layout: ``registry_object`` holds what every object has plus its ebRIM XML (with registry UUIDs, in a compact
form: ``StoredXml``) so a LeafClass answer is a read of stored XML, not a reassembly from rows; on PostgreSQL it
may be hash-partitioned by patient (migration 0008_scale, docs/registry-storage.md); the per-kind tables and
``object_value`` hold the indexed attributes that stored queries filter on. Their rows are keyed by the
object's id without a foreign key (migration 0003 says why): they are written with their object, in its
transaction, and never deleted.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    TypeDecorator,
    and_,
    or_,
    text,
)

from registry._compact_keys import ATTRIBUTE_CODES, STATUS_CODES, Codes, decode_id, encode_id
from registry._stored_form import decode, encode

metadata = MetaData()


class ObjectId(TypeDecorator[str]):
    """A registry object id (entryUUID, lid, association ends...), stored in its compact form
    (``registry._compact_keys``: 16 bytes for a canonical ``urn:uuid:``, migration 0009_compact_keys); the text
    is what is bound and read."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> bytes | None:
        return None if value is None else encode_id(value)

    def process_result_value(self, value: bytes | None, dialect: Dialect) -> str | None:
        return None if value is None else decode_id(value)


class _Coded(TypeDecorator[str]):
    """A text of a small known set stored as a one-letter code, any other text losslessly (``Codes``)."""

    impl = String
    cache_ok = True
    codes: Codes

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.codes.encode(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.codes.decode(value)


class StatusCode(_Coded):
    """An availabilityStatus URN, stored as one letter when known (migration 0009_compact_keys)."""

    cache_ok = True
    codes = STATUS_CODES


class AttributeCode(_Coded):
    """The name of a multi-valued attribute in ``object_value``, one letter when known (0009_compact_keys)."""

    cache_ok = True
    codes = ATTRIBUTE_CODES


class StoredXml(TypeDecorator[str]):
    """An object's ebRIM XML text, kept in its compact stored form (``registry._stored_form``, migration
    0008_scale): the text is what is bound and read. A value that is already the stored form (bytes: the rows
    ``_submission.rows_of`` makes, written as they are by COPY) is bound unchanged."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: str | bytes | None, dialect: Dialect) -> bytes | None:
        return encode(value) if isinstance(value, str) else value

    def process_result_value(self, value: bytes | None, dialect: Dialect) -> str | None:
        return None if value is None else decode(value)


patient = Table(
    "patient",
    metadata,
    Column("patient_key", String(256), primary_key=True),  # CX without CX.5: id^^^&OID&ISO
    Column("created_at", String(14), nullable=False),
    Column("closed_at", String(14), nullable=True),
)

registry_object = Table(
    "registry_object",
    metadata,
    Column("id", ObjectId, primary_key=True),
    Column("lid", ObjectId, nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", String(2), nullable=False),  # DE, SS, FD, AS
    Column("status", StatusCode(65), nullable=False),
    Column("patient_key", String(256), nullable=True),
    Column("unique_id", String(128), nullable=True),
    Column("submission_set_id", ObjectId, nullable=False),  # the SubmissionSet that created it
    Column("xml", StoredXml, nullable=False),
    Index("ix_object_patient_kind_status", "patient_key", "kind", "status"),
    # Partial (migration 0004): Associations have no uniqueId; a first version is found by its id (lid = id).
    Index("ix_object_unique_id", "unique_id", postgresql_where=text("unique_id IS NOT NULL"),
          sqlite_where=text("unique_id IS NOT NULL")),
    Index("ix_object_lid", "lid", "version", postgresql_where=text("version > 1"), sqlite_where=text("version > 1")),
)


def with_lid(lids: Sequence[str]) -> ColumnElement[bool]:
    """Registry objects whose logical id is one of ``lids``: first versions by their id (their lid), later
    versions through the partial index ``ix_object_lid`` (its condition spelled out: SQLite uses a partial
    index only when the query repeats it)."""
    ro = registry_object.c
    return or_(ro.id.in_(lids), and_(ro.version > 1, ro.lid.in_(lids)))


def with_version(lid: str, version: int) -> ColumnElement[bool]:
    """The registry object that is version ``version`` of logical object ``lid``."""
    ro = registry_object.c
    return ro.id == lid if version == 1 else and_(ro.version > 1, ro.lid == lid, ro.version == version)

document_entry = Table(
    "document_entry",
    metadata,
    Column("id", ObjectId, primary_key=True),
    Column("object_type", String(64), nullable=False),
    Column("mime_type", String(256), nullable=False),
    Column("hash", String(40), nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("repository_unique_id", String(64), nullable=True),
    Column("creation_time", String(14), nullable=True),
    Column("service_start_time", String(14), nullable=True),
    Column("service_stop_time", String(14), nullable=True),
    Column("class_code", String(256), nullable=True),
    Column("class_scheme", String(256), nullable=True),
    Column("type_code", String(256), nullable=True),
    Column("type_scheme", String(256), nullable=True),
    Column("format_code", String(256), nullable=True),
    Column("format_scheme", String(256), nullable=True),
    Column("hcft_code", String(256), nullable=True),
    Column("hcft_scheme", String(256), nullable=True),
    Column("practice_code", String(256), nullable=True),
    Column("practice_scheme", String(256), nullable=True),
)

submission_set = Table(
    "submission_set",
    metadata,
    Column("id", ObjectId, primary_key=True),
    Column("source_id", String(64), nullable=False),
    Column("submission_time", String(14), nullable=True),
    Column("content_type_code", String(256), nullable=True),
    Column("content_type_scheme", String(256), nullable=True),
)

folder = Table(
    "folder",
    metadata,
    Column("id", ObjectId, primary_key=True),
    Column("last_update_time", String(14), nullable=False),
)

association = Table(
    "association",
    metadata,
    Column("id", ObjectId, primary_key=True),
    Column("association_type", String(128), nullable=False),
    Column("source", ObjectId, nullable=False),
    Column("target", ObjectId, nullable=False),
    Column("submission_set_status", String(32), nullable=True),
    Index("ix_association_source", "source"),
    Index("ix_association_target", "target"),
)

# Multi-valued attributes stored queries filter on: confidentialityCode, eventCodeList, authorPerson,
# referenceIdList, Folder codeList.
object_value = Table(
    "object_value",
    metadata,
    Column("object_id", ObjectId, nullable=False),
    Column("attribute", AttributeCode(33), nullable=False),
    Column("value", String(256), nullable=False),
    Column("scheme", String(256), nullable=True),
    Index("ix_object_value_object_attribute", "object_id", "attribute"),  # EXISTS in stored queries (0002)
    Index("ix_object_value_lookup", "attribute", "value"),
)

# Who filed each submission (migration 0005): the DMP's "own documents" and "documents of my structure" rules
# (PDT-INF-526 notes 8, 9) need it and ebRIM does not carry it. One row per SubmissionSet, written in the
# registration's transaction; an object's origin is its first version's submission (registry_object.lid).
submission_origin = Table(
    "submission_origin",
    metadata,
    Column("submission_set_id", ObjectId, primary_key=True),
    Column("submitter", String(64), nullable=False),        # VIHF NameID (IdNat_PS), or the patient key
    Column("structure_id", String(64), nullable=True),      # Identifiant_Structure
    Column("by_patient", Boolean, nullable=False),
)
