"""PostgreSQL's two ways of writing a registration's rows (``registry._pg_rows``): the one statement of
data-modifying CTEs stores exactly what one COPY per table stores (every column, byte for byte, through the
column types' bind processing), and refuses what COPY refuses with the same error (class and message), on a
plain and on a hash-partitioned ``registry_object`` (migration 0008_scale). And a registration through
``Registry`` writes its rows and its origin in one statement."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import xds_factory as f
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_outcome
from hypothesis import strategies as st
from nodes import database_url
from sqlalchemy import BigInteger, Boolean, Connection, Integer, Table, event, exc, text

from registry import Registry, Status, Store
from registry._pg_rows import TABLES, copy_rows, insert_in_one_statement
from registry._schema import AttributeCode, ObjectId, StatusCode, StoredXml
from registry._stored_form import encode
from registry._visibility import Origin

PATIENT = f.PATIENT


@pytest.fixture(scope="module", params=["postgresql", "postgresql-partitioned"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    s = Store(database_url("postgresql", request) or "")
    s.migrate(partitions=4 if request.param == "postgresql-partitioned" else 0)
    yield s
    s.dispose()


def _raw(conn: Connection, table: Table) -> list[tuple[Any, ...]]:
    """Every stored row of ``table`` as the driver reads it (no SQLAlchemy type processing), in a fixed order."""
    rows = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
            for r in conn.exec_driver_sql(f"SELECT * FROM {table.name}").all()]
    return sorted(rows, key=repr)


def _outcome(store: Store, rows: list[list[dict[str, Any]]], *, one_statement: bool
             ) -> tuple[str, Any]:
    """What writing ``rows`` (per table of TABLES) stores, or how it is refused, in a rolled back transaction."""
    with store.engine.connect() as conn:
        tx = conn.begin()
        try:
            if one_statement:
                insert_in_one_statement(conn, rows)
            else:
                for table, batch in zip(TABLES, rows, strict=True):
                    if batch:
                        copy_rows(conn, table, batch)
            return "stored", [_raw(conn, t) for t in TABLES]
        except exc.DBAPIError as refused:
            return type(refused).__name__, str(refused.orig).splitlines()[0]
        finally:
            tx.rollback()


# --- generated rows ---------------------------------------------------------------------------------

_TEXT_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_IDS = st.one_of(st.uuids().map(lambda u: f"urn:uuid:{u}"), st.uuids().map(lambda u: f"urn:uuid:{u}".upper()),
                 st.text(_TEXT_CHARS, min_size=1, max_size=40).map(lambda t: f"{t}-{uuid.uuid4().hex[:6]}"))


def _value(column: Any) -> st.SearchStrategy[Any]:
    """Any value the column's type binds: sometimes one PostgreSQL refuses (too wide for its column)."""
    t = column.type
    if isinstance(t, ObjectId):
        value: st.SearchStrategy[Any] = _IDS
    elif isinstance(t, StatusCode):
        value = st.one_of(st.sampled_from([s.value for s in Status]), st.text(_TEXT_CHARS, max_size=70))
    elif isinstance(t, AttributeCode):
        value = st.one_of(st.sampled_from(["confidentialityCode", "eventCodeList", "authorPerson",
                                           "referenceIdList", "codeList"]), st.text(_TEXT_CHARS, max_size=35))
    elif isinstance(t, StoredXml):
        value = st.one_of(st.binary(max_size=300), st.text(_TEXT_CHARS, max_size=100).map(
            lambda body: encode(f'<rim:Association xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" '
                                f'id="urn:uuid:{uuid.uuid4()}"><rim:Name>{body.replace("<", "").replace("&", "")}'
                                f'</rim:Name></rim:Association>')))
    elif isinstance(t, Boolean):
        value = st.booleans()
    elif isinstance(t, BigInteger):
        value = st.one_of(st.integers(0, 2**40), st.integers(2**63 - 2, 2**64))
    elif isinstance(t, Integer):
        value = st.one_of(st.integers(1, 2**31 - 1), st.integers(2**31, 2**33))
    else:
        value = st.text(_TEXT_CHARS, max_size=t.length + 2 if column.name != "kind" else 3)
    return st.one_of(st.none(), value) if column.nullable else value


def _rows_of(table: Table) -> st.SearchStrategy[list[dict[str, Any]]]:
    # Keys in the table's order, as rows_of makes them (COPY converts the columns in its list's order).
    row = st.fixed_dictionaries({c.name: _value(c) for c in table.columns}).map(
        lambda r: {c.name: r[c.name] for c in table.columns})
    return st.lists(row, max_size=3, unique_by=lambda r: r.get("id") or r.get("submission_set_id") or id(r))


_REGISTRATIONS = st.tuples(*(_rows_of(t) for t in TABLES)).map(list)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(rows=_REGISTRATIONS)
def test_one_statement_stores_and_refuses_what_copy_does(store, rows):
    copied = _outcome(store, rows, one_statement=False)
    note_outcome(copied[0])

    assert _outcome(store, rows, one_statement=True) == copied


def _fitting(table: Table, n: int) -> dict[str, Any]:
    """A row of ``table`` every column of which fits."""
    row: dict[str, Any] = {}
    for c in table.columns:
        t = c.type
        row[c.name] = (f"urn:uuid:{uuid.uuid4()}" if isinstance(t, ObjectId) else encode("<x/>")
                       if isinstance(t, StoredXml) else Status.APPROVED.value if isinstance(t, StatusCode)
                       else "codeList" if isinstance(t, AttributeCode) else True if isinstance(t, Boolean)
                       else n if isinstance(t, Integer) else "DE" if c.name == "kind" else f"v{n}")
    return row


def test_rows_of_every_table_are_stored_alike(store):
    rows = [[_fitting(t, n) for n in range(1, 3)] for t in TABLES]
    copied = _outcome(store, rows, one_statement=False)

    assert copied[0] == "stored"
    assert all(len(table) == 2 for table in copied[1])
    assert _outcome(store, rows, one_statement=True) == copied


def test_the_first_refusal_is_the_one_copy_meets_first(store):
    """Values too wide in several tables: the tables are written in COPY's order, so the error names the
    column type of the first table's (registry_object's unique_id: varchar(128), not document_entry's
    hash: varchar(40) nor object_value's value: varchar(256))."""
    rows = [[_fitting(t, 1)] for t in TABLES]
    rows[0][0]["unique_id"] = "u" * 129
    rows[1][0]["hash"] = "h" * 41
    rows[5][0]["value"] = "v" * 257
    copied = _outcome(store, rows, one_statement=False)

    assert copied == ("DataError", "value too long for type character varying(128)")
    assert _outcome(store, rows, one_statement=True) == copied
    rows[0][0]["unique_id"] = "u"
    assert _outcome(store, rows, one_statement=True) == _outcome(store, rows, one_statement=False) == (
        "DataError", "value too long for type character varying(40)")


def test_a_size_beyond_bigint_is_refused_with_copys_message(store):
    rows = [[_fitting(t, 1)] for t in TABLES]
    rows[1][0]["size"] = 2**64
    copied = _outcome(store, rows, one_statement=False)

    assert copied[0] == "DataError"
    assert "out of range for type bigint" in copied[1]
    assert _outcome(store, rows, one_statement=True) == copied


def test_an_id_already_registered_is_an_integrity_error_either_way(store):
    rows = [[_fitting(t, 1)] for t in TABLES]
    with store.write() as conn:
        insert_in_one_statement(conn, rows)
    try:
        for table in range(len(TABLES)):
            if table == 5:   # object_value has no key: its rows may repeat
                continue
            again = [[] for _ in TABLES]
            again[table] = [dict(rows[table][0])]
            copied = _outcome(store, again, one_statement=False)
            assert copied[0] == "IntegrityError", TABLES[table].name
            assert "duplicate key value" in copied[1]
            assert _outcome(store, again, one_statement=True) == copied
    finally:
        with store.write() as conn:
            for table, table_rows in zip(TABLES, rows, strict=True):
                key = table.primary_key.columns.values()[0] if table.primary_key.columns else table.c.object_id
                conn.execute(table.delete().where(key == table_rows[0][key.name]))


def test_nothing_written_inserts_nothing(store):
    assert _outcome(store, [[] for _ in TABLES], one_statement=True) == _outcome(
        store, [[] for _ in TABLES], one_statement=False) == ("stored", [[] for _ in TABLES])


# --- through the registry ---------------------------------------------------------------------------


def test_a_registration_writes_its_rows_and_origin_in_one_statement(store):
    registry = Registry(store)
    if not registry.patient_exists(PATIENT):
        registry.create_patients([PATIENT])
    statements: list[str] = []

    def capture(_conn, _cur, statement, _parameters, _ctx, _many):  # type: ignore[no-untyped-def]
        statements.append(statement)

    docs = [f.Doc(b"%d" % n, f"Document{n}", patient_id=PATIENT) for n in range(2)]
    request = f.submit_objects_request(docs, ss=f.submission_set(PATIENT), repository_attributes=True)
    sub = registry.read_request(request)
    event.listen(store.keyed_engine, "before_cursor_execute", capture)
    try:
        response = registry.register_submission(sub, origin=Origin("899700000001", "1234", by_patient=False))
    finally:
        event.remove(store.keyed_engine, "before_cursor_execute", capture)

    assert not response.errors, response
    writes = [s for s in statements if s.lstrip().upper().startswith(("INSERT", "WITH", "COPY"))]
    assert len(writes) == 1
    assert writes[0].startswith("WITH ")
    with store.read() as conn:
        origins = conn.execute(text("SELECT count(*) FROM submission_origin WHERE submitter = '899700000001'"))
        documents = conn.execute(text("SELECT count(*) FROM registry_object WHERE kind = 'DE'"))
        assert (origins.scalar(), documents.scalar()) == (1, 2)


def test_the_statement_is_short_enough_for_psycopgs_cache_of_parsed_queries(store):
    """psycopg parses a query's placeholders again at every execution when its text is longer than this: the
    statement's parameters are a few arrays sliced in SQL so that it stays under (registry._pg_rows)."""
    from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH

    from registry._pg_rows import _plan

    assert len(_plan(store.engine.dialect).sql.encode()) <= MAX_CACHED_STATEMENT_LENGTH
