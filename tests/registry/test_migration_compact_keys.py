"""Migration 0009_compact_keys on a registry filled before it (rows as the code of 0008_scale wrote them: ids,
statuses and attribute names as text): after the upgrade the registry holds and answers exactly what a registry
that stored the same submissions with the compact keys from the start holds and answers, byte for byte; the
downgrade gives back the rows as they were. SQLite, PostgreSQL, and PostgreSQL partitioned by patient."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import xds_factory as f
from alembic import command
from sqlalchemy import Connection, MetaData, Table, select, update
from xds_client import adhoc_query

from registry import Registry, Store
from registry._schema import metadata, registry_object
from registry._store import PARTITIONS_ATTRIBUTE
from registry._submission import Rows, insert_rows, prepare, write_origin
from registry._visibility import Origin
from registry._vocabulary import Status

NOW = "20240601120000"
FIND = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
GET_ASSOCIATIONS = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155"
UNKNOWN_STATUS = "urn:example:StatusType:Other"
REGISTRY_TABLES = ("registry_object", "document_entry", "submission_set", "folder", "association", "object_value",
                   "submission_origin")


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-partitioned"])
def new_store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    made: list[Store] = []

    def make() -> tuple[Store, int]:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / f'r{len(made)}.db'}"
        else:
            server = request.getfixturevalue("shared_postgres")
            name = f"mig_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(f"host={server.root} user=app dbname=postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            url = f"postgresql+psycopg://app@/{name}?host={server.root}"
        store = Store(url)
        made.append(store)
        return store, 4 if request.param == "postgresql-partitioned" else 0

    yield make
    for store in made:
        store.dispose()


def _alembic(store: Store, conn: Connection, partitions: int) -> Any:
    cfg = store._alembic_config()
    cfg.attributes["connection"] = conn
    cfg.attributes[PARTITIONS_ATTRIBUTE] = partitions
    return cfg


def _submissions() -> list[Rows]:
    upper = f"urn:uuid:{str(uuid.uuid4()).upper()}"  # an id in another form than the canonical one
    docs = [[f.Doc(b"one", "Document01"), f.Doc(b"two", upper)], [f.Doc(b"three", "Document01")]]
    out = []
    for batch in docs:
        prepared = prepare(Registry.read_request(f.submit_objects_request(  # type: ignore[arg-type]
            batch, repository_attributes=True)), require_repository_attributes=True, now=NOW)
        assert prepared.rows is not None, prepared.findings
        out.append(prepared.rows)
    return out


def _raw_tables(conn: Connection) -> dict[str, Table]:
    """The tables as the database has them (at 0008_scale: text keys), without the code's types."""
    reflected = MetaData()
    return {name: Table(name, reflected, autoload_with=conn) for name in REGISTRY_TABLES}


def _raw_dump(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {name: sorted((tuple(r) for r in conn.execute(select(t))), key=repr)
            for name, t in _raw_tables(conn).items()}


def _dump(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {t.name: sorted((tuple(r) for r in conn.execute(select(t))), key=repr)
            for t in metadata.sorted_tables if t.name in REGISTRY_TABLES}


def _answers(registry: Registry, rows: list[Rows]) -> list[bytes]:
    statuses = f"('{Status.APPROVED.value}', '{Status.DEPRECATED.value}')"
    documents = [o["id"] for r in rows for o in r.objects if o["kind"] == "DE"]
    every = "(" + ", ".join(f"'{i}'" for i in documents) + ")"
    queries = [
        adhoc_query(FIND, [("$XDSDocumentEntryPatientId", [f"'{f.PATIENT}'"]), ("$XDSDocumentEntryStatus", [statuses]),
                           ("$XDSDocumentEntryConfidentialityCode", ["('N^^2.16.840.1.113883.5.25')"])]),
        adhoc_query(FIND, [("$XDSDocumentEntryPatientId", [f"'{f.PATIENT}'"]), ("$XDSDocumentEntryStatus", [statuses])],
                    return_type="ObjectRef"),
        adhoc_query(GET_DOCUMENTS, [("$XDSDocumentEntryEntryUUID", [every])]),
        adhoc_query(GET_ASSOCIATIONS, [("$uuid", [every])]),
    ]
    return [registry.stored_query(q).data for q in queries]


def test_upgrade_keeps_every_row_and_answer(new_store):
    rows = _submissions()
    deprecated, other = rows[0].documents[0]["id"], rows[0].documents[1]["id"]
    origin = Origin("899700012345", "1.2.250.1.71.4.2.2", by_patient=False)

    old, partitions = new_store()
    with old.engine.begin() as conn:
        command.upgrade(_alembic(old, conn, partitions), "0008_scale")
    with old.engine.begin() as conn:  # as the code of 0008_scale wrote them: every key as text
        tables = _raw_tables(conn)
        for r in rows:
            for table, attr in (("registry_object", "objects"), ("document_entry", "documents"),
                                ("submission_set", "submission_sets"), ("association", "associations"),
                                ("object_value", "values")):
                conn.execute(tables[table].insert(), getattr(r, attr))
            conn.execute(tables["submission_origin"].insert(), {
                "submission_set_id": r.submission_set_id, "submitter": origin.submitter,
                "structure_id": origin.structure, "by_patient": origin.by_patient})
        ro = tables["registry_object"].c
        conn.execute(update(tables["registry_object"]).where(ro.id == deprecated)
                     .values(status=Status.DEPRECATED.value))
        conn.execute(update(tables["registry_object"]).where(ro.id == other).values(status=UNKNOWN_STATUS))
    with old.engine.connect() as conn:
        before = _raw_dump(conn)
    old.migrate(partitions=partitions)

    new, _ = new_store()
    new.migrate(partitions=partitions)
    with new.write() as conn:
        insert_rows(conn, rows)
        for r in rows:
            write_origin(conn, r.submission_set_id, origin)
        conn.execute(update(registry_object).where(registry_object.c.id == deprecated)
                     .values(status=Status.DEPRECATED.value))
        conn.execute(update(registry_object).where(registry_object.c.id == other).values(status=UNKNOWN_STATUS))

    with old.read() as a, new.read() as b:
        assert _dump(a) == _dump(b)
        stored = a.execute(select(registry_object.c.id).where(registry_object.c.kind == "DE")).scalars().all()
        assert sorted(stored) == sorted(d["id"] for r in rows for d in r.documents)  # the text, read back
        raw_id = a.exec_driver_sql("SELECT id FROM registry_object WHERE kind = 'DE'").scalars().all()
        assert sorted(len(i) for i in raw_id) == [16, 16, 46]  # canonical: 16 bytes; the uppercase one: text
    answers = _answers(Registry(old), rows)
    assert answers == _answers(Registry(new), rows)
    assert answers[0].count(b"<rim:ExtrinsicObject") == 2  # Approved and Deprecated
    assert Status.DEPRECATED.value.encode() in answers[0]
    assert answers[2].count(b"<rim:ExtrinsicObject") == 3
    assert UNKNOWN_STATUS.encode() in answers[2]
    assert answers[3].count(b"<rim:Association ") == 3

    with old.engine.begin() as conn:
        command.downgrade(_alembic(old, conn, partitions), "0008_scale")
    with old.engine.connect() as conn:
        assert _raw_dump(conn) == before
