"""``registry.DirectStatement``: statements executed on the DB-API cursor store and read exactly what
SQLAlchemy's own execution stores and reads (compact keys, stored-form XML, booleans), with expanding IN lists,
executemany, engine events and SQLAlchemy's exceptions, inside the caller's transaction and savepoints.
SQLite file and PostgreSQL (real databases, the registry's migrated schema)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nodes import database_url
from sqlalchemy import Connection, bindparam, delete, event, exc, insert, select, text, update

from registry import DirectStatement, Status, Store
from registry._schema import object_value, registry_object, submission_origin
from registry._store import _Pending

ro, ov = registry_object.c, object_value.c


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    url = database_url(request.param, request) or f"sqlite:///{tmp_path_factory.mktemp('direct') / 'r.db'}"
    s = Store(url)
    s.migrate()
    yield s
    s.dispose()


def _uuid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


# Any text a registry value can hold: what XML can carry (no NUL, no lone surrogate; PostgreSQL's text refuses NUL).
_TEXT_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
# Ids: canonical urn:uuid (16 bytes stored), anything else (kept as text, incl. 15-byte texts and uppercase).
ids = st.one_of(st.uuids().map(lambda u: f"urn:uuid:{u}"), st.uuids().map(lambda u: f"urn:uuid:{u}".upper()),
                st.text(_TEXT_CHARS, min_size=1, max_size=40))
statuses = st.one_of(st.sampled_from([s.value for s in Status]), st.text(_TEXT_CHARS, max_size=30))
attributes = st.one_of(st.sampled_from(["confidentialityCode", "eventCodeList", "authorPerson", "referenceIdList",
                                        "codeList"]), st.text(_TEXT_CHARS, max_size=30))
xml_texts = st.builds(
    lambda oid, body: f'<rim:ExtrinsicObject xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" id="{oid}" '
                      f'objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"><rim:Name>{body}</rim:Name>'
                      f'</rim:ExtrinsicObject>',
    st.uuids().map(lambda u: f"urn:uuid:{u}"),
    st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="<&"), max_size=200))

_INSERT_OBJECT = DirectStatement(insert(registry_object))
_SELECT_OBJECT = DirectStatement(select(ro.id, ro.lid, ro.status, ro.submission_set_id, ro.xml, ro.kind, ro.version)
                                 .where(ro.id == bindparam("id")))
_INSERT_VALUE = DirectStatement(insert(object_value))
_SELECT_VALUES = DirectStatement(select(ov.object_id, ov.attribute, ov.value, ov.scheme)
                                 .where(ov.object_id == bindparam("id")).order_by(ov.value))


def _raw(conn: Connection, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Stored values as the driver reads them (no SQLAlchemy type processing), bytes as bytes."""
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
            for r in conn.execute(text(sql), params).all()]


def _rolled_back(store: Store) -> Any:
    """A connection in a transaction that is rolled back at the end (nothing the test writes stays)."""
    class _Tx:
        def __enter__(self) -> Connection:
            self.conn = store.engine.connect()
            self.tx = self.conn.begin()
            store._begin_sqlite(self.conn, "BEGIN IMMEDIATE")   # the node's SQLite driver does not begin itself
            return self.conn

        def __exit__(self, *_exc: object) -> None:
            self.tx.rollback()
            self.conn.close()
    return _Tx()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(oid=ids, lid=ids, status=statuses, xml=xml_texts, attribute=attributes,
       scheme=st.none() | st.text(_TEXT_CHARS, max_size=5))
def test_compact_keys_and_stored_xml_are_stored_and_read_as_through_sqlalchemy(store, oid, lid, status, xml,
                                                                                attribute, scheme):
    row = {"id": oid, "lid": lid, "version": 2, "kind": "DE", "status": status, "patient_key": None,
           "unique_id": None, "submission_set_id": lid, "xml": xml}
    value = {"object_id": oid, "attribute": attribute, "value": "v", "scheme": scheme}
    stored_sql = "SELECT id, lid, status, submission_set_id, xml FROM registry_object WHERE version = 2"
    value_sql = "SELECT object_id, attribute, value, scheme FROM object_value WHERE value = 'v'"
    with _rolled_back(store) as conn:
        conn.execute(insert(registry_object), row)
        conn.execute(insert(object_value), value)
        by_sqlalchemy = _raw(conn, stored_sql), _raw(conn, value_sql)
        read_by_sqlalchemy = conn.execute(_SELECT_OBJECT.statement, {"id": oid}).all()
        read_directly = _SELECT_OBJECT.rows(conn, {"id": oid})
        values_directly = _SELECT_VALUES.rows(conn, {"id": oid})
        conn.execute(delete(registry_object).where(ro.version == 2))
        conn.execute(delete(object_value).where(ov.value == "v"))
        _INSERT_OBJECT.run(conn, row)
        _INSERT_VALUE.run(conn, value)
        directly = _raw(conn, stored_sql), _raw(conn, value_sql)
        read_back = conn.execute(_SELECT_OBJECT.statement, {"id": oid}).all()
    assert directly == by_sqlalchemy                       # the same bytes stored
    assert [tuple(r) for r in read_directly] == [tuple(r) for r in read_by_sqlalchemy] == [tuple(r) for r in read_back]
    assert (read_directly[0].id, read_directly[0].status, read_directly[0].xml) == (oid, status, xml)
    assert [tuple(r) for r in values_directly] == [(oid, attribute, "v", scheme)]


def test_booleans_and_absent_rows_read_as_through_sqlalchemy(store):
    origin = DirectStatement(select(submission_origin).where(submission_origin.c.submission_set_id == bindparam("i")))
    with _rolled_back(store) as conn:
        for by_patient in (True, False):
            i = _uuid()
            DirectStatement(insert(submission_origin)).run(
                conn, {"submission_set_id": i, "submitter": "s", "structure_id": None, "by_patient": by_patient})
            assert origin.first(conn, {"i": i}) == tuple(conn.execute(origin.statement, {"i": i}).one())
            assert origin.first(conn, {"i": i}).by_patient is by_patient
        assert origin.first(conn, {"i": _uuid()}) is None


@pytest.mark.parametrize("count", [0, 1, 2, 7])
def test_expanding_in_lists_given_and_literal(store, count):
    """An expanding parameter the caller gives (any length, the empty list included) and a literal IN list."""
    rows = [{"id": _uuid(), "lid": _uuid(), "version": 3, "kind": kind, "status": Status.APPROVED.value,
             "patient_key": None, "unique_id": None, "submission_set_id": _uuid(), "xml": "<x/>"}
            for kind in ("DE", "SS", "FD", "AS") for _ in range(2)]
    stmt = DirectStatement(select(ro.id, ro.kind).where(ro.id.in_(bindparam("wanted", expanding=True)),
                                                        ro.kind.in_(("DE", "FD"))).order_by(ro.id))
    with _rolled_back(store) as conn:
        conn.execute(insert(registry_object), rows)
        wanted = [r["id"] for r in rows[:count]] + [_uuid()]     # one that matches nothing
        found = stmt.rows(conn, {"wanted": wanted[:count]})
        expected = conn.execute(stmt.statement, {"wanted": wanted[:count]}).all()
        assert [tuple(r) for r in found] == [tuple(r) for r in expected]
        assert {r.id for r in found} == {r["id"] for r in rows[:count] if r["kind"] in ("DE", "FD")}
        assert stmt.rows(conn, {"wanted": wanted}) == found     # another length: another rendering, same answer


def test_executemany_inserts_every_row_as_sqlalchemy_does(store):
    oid = _uuid()
    values = [{"object_id": oid, "attribute": a, "value": f"v{n}", "scheme": None if n % 2 else "s"}
              for n, a in enumerate(["eventCodeList", "authorPerson", "other attribute", "codeList"] * 3)]
    with _rolled_back(store) as conn:
        _INSERT_VALUE.run_many(conn, values)
        _INSERT_VALUE.run_many(conn, [])
        directly = _raw(conn, "SELECT object_id, attribute, value, scheme FROM object_value ORDER BY value")
        assert [tuple(r) for r in _SELECT_VALUES.rows(conn, {"id": oid})] == sorted(
            ((oid, v["attribute"], v["value"], v["scheme"]) for v in values), key=lambda r: r[2])
        conn.execute(delete(object_value).where(ov.object_id == oid))
        conn.execute(insert(object_value), values)
        assert _raw(conn, "SELECT object_id, attribute, value, scheme FROM object_value ORDER BY value") == directly


def test_update_and_rowcount(store):
    oid = _uuid()
    row = {"id": oid, "lid": oid, "version": 1, "kind": "DE", "status": Status.APPROVED.value, "patient_key": "p",
           "unique_id": None, "submission_set_id": oid, "xml": "<x/>"}
    deprecate = DirectStatement(update(registry_object).where(ro.id == bindparam("oid")))
    with _rolled_back(store) as conn:
        _INSERT_OBJECT.run(conn, row)
        assert deprecate.run(conn, {"oid": oid, "status": Status.DEPRECATED.value}) == 1
        assert deprecate.run(conn, {"oid": _uuid(), "status": Status.DEPRECATED.value}) == 0
        assert conn.execute(select(ro.status).where(ro.id == oid)).scalar_one() == Status.DEPRECATED.value


def _object(oid: str) -> dict[str, Any]:
    return {"id": oid, "lid": oid, "version": 1, "kind": "SS", "status": Status.APPROVED.value, "patient_key": "p",
            "unique_id": None, "submission_set_id": oid, "xml": "<x/>"}


def test_an_error_is_sqlalchemys_and_a_savepoint_rolls_it_back(store):
    kept, undone = _uuid(), _uuid()
    with store.write() as conn:
        _INSERT_OBJECT.run(conn, _object(kept))
        savepoint = conn.begin_nested()
        _INSERT_OBJECT.run(conn, _object(undone))
        with pytest.raises(exc.IntegrityError):
            _INSERT_OBJECT.run(conn, _object(kept))          # duplicate primary key
        savepoint.rollback()
        # the transaction goes on after the savepoint's rollback
        assert {r.id for r in DirectStatement(select(ro.id).where(ro.id.in_([kept, undone]))).rows(conn)} == {kept}
    with store.read() as conn:
        assert _SELECT_OBJECT.first(conn, {"id": kept}) is not None
        assert _SELECT_OBJECT.first(conn, {"id": undone}) is None


def test_a_failing_work_of_a_commit_group_is_undone_and_the_others_kept(store):
    """Group commit's own savepoints (sent to the driver) around works that use direct statements."""
    good, bad, duplicate = _uuid(), _uuid(), _uuid()

    def fails(conn: Connection) -> None:
        _INSERT_OBJECT.run(conn, _object(bad))
        _INSERT_VALUE.run_many(conn, [{"object_id": bad, "attribute": "codeList", "value": "x", "scheme": None}])
        _INSERT_OBJECT.run(conn, _object(duplicate))

    group = [_Pending(lambda conn: _INSERT_OBJECT.run(conn, _object(duplicate))), _Pending(fails),
             _Pending(lambda conn: _INSERT_OBJECT.run(conn, _object(good)))]
    store._group._commit(lambda: group)
    assert [p.result for p in group] == [1, None, 1]
    assert isinstance(group[1].error, exc.IntegrityError)
    with store.read() as conn:
        assert {r.id for r in DirectStatement(select(ro.id).where(ro.id.in_([good, bad, duplicate]))).rows(conn)} \
            == {good, duplicate}
        assert _SELECT_VALUES.rows(conn, {"id": bad}) == []


def test_engine_events_see_direct_statements(store):
    seen: list[tuple[str, bool]] = []

    def before(_conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, many: bool) -> None:
        seen.append((statement.split(None, 1)[0], many))

    event.listen(store.engine, "before_cursor_execute", before)
    try:
        with _rolled_back(store) as conn:
            _INSERT_VALUE.run_many(conn, [{"object_id": _uuid(), "attribute": "a", "value": "v", "scheme": None}] * 2)
            _SELECT_OBJECT.rows(conn, {"id": _uuid()})
    finally:
        event.remove(store.engine, "before_cursor_execute", before)
    assert seen == [("INSERT", True), ("SELECT", False)]


def test_one_statement_used_by_threads_at_once(store):
    """Compiled lazily, once, by whichever thread comes first: concurrent first uses agree."""
    stmt = DirectStatement(select(ro.id).where(ro.id == bindparam("id")))
    errors: list[BaseException] = []

    def use() -> None:
        try:
            with store.read() as conn:
                assert stmt.rows(conn, {"id": _uuid()}) == []
        except BaseException as failed:   # reported below
            errors.append(failed)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_missing_parameter_is_refused(tmp_path: Path):
    s = Store(f"sqlite:///{tmp_path / 'r.db'}")
    s.migrate()
    try:
        with s.read() as conn, pytest.raises(exc.ArgumentError, match="id"):
            _SELECT_OBJECT.rows(conn, {})
    finally:
        s.dispose()
