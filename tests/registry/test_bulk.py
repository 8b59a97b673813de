"""The bulk path (registry._bulk): the same rules, rows and lifecycle effects as registering the submissions one
by one with register(), set-based checks, one transaction per batch."""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Callable

import psycopg
import pytest
import xds_factory as f
from sqlalchemy import event, exc, select, text

from registry import (
    BulkReport,
    ErrorCode,
    PatientError,
    Problem,
    Registry,
    RimSubmission,
    Store,
    _model,
    read_registry_object_list,
)
from registry import _bulk as bulk_module
from registry import _uuids as registry_uuids
from registry._schema import association, metadata, registry_object
from registry._vocabulary import AssociationType as T

NOW = "20250102030405"
UNKNOWN_PATIENT = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO"


def new_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


class Scenario:
    """ITI-42 submissions built with the model writers; every id is a urn:uuid fixed when the scenario is built,
    so two runs of the same scenario store the same rows."""

    def __init__(self) -> None:
        self.subs: list[RimSubmission] = []

    def doc(self, content: bytes, patient: str = f.PATIENT, **meta: object) -> _model.DocumentEntry:
        d = f.Doc(content, new_id(), patient_id=patient, meta=dict(meta))
        return f.document_entry(d, repository_attributes=True)

    def submit(self, docs: list[_model.DocumentEntry], *, patient: str = f.PATIENT,
               links: tuple[tuple[T, str, str], ...] = (), folder: _model.Folder | None = None,
               into_folder: str | None = None, ss_unique_id: str | None = None) -> str:
        """One submission: ``docs`` (members of the SubmissionSet), a new ``folder``, the documents put
        ``into_folder`` (new or registered), and extra associations ``links`` (type, source, target)."""
        ss = f.submission_set(patient, ss_unique_id)
        ss.entry_uuid = new_id()
        objects = [_model.submission_set_to_rim(ss)]

        def assoc(atype: T, source: str, target: str, status: str | None = None) -> str:
            a = _model.Association(entry_uuid=new_id(), association_type=atype.value, source=source, target=target,
                                   submission_set_status=status)
            objects.append(_model.association_to_rim(a))
            return a.entry_uuid

        for d in docs:
            objects.append(_model.document_entry_to_rim(d))
            assoc(T.HAS_MEMBER, ss.entry_uuid, d.entry_uuid, "Original")
        if folder is not None:
            objects.append(_model.folder_to_rim(folder))
            assoc(T.HAS_MEMBER, ss.entry_uuid, folder.entry_uuid, "Original")
        for d in docs if into_folder else ():
            assoc(T.HAS_MEMBER, ss.entry_uuid, assoc(T.HAS_MEMBER, into_folder, d.entry_uuid), "Original")
        for atype, source, target in links:
            assoc(atype, source, target)
        self.subs.append(RimSubmission(objects=objects))
        return ss.entry_uuid

    def copy(self) -> list[RimSubmission]:
        return copy.deepcopy(self.subs)


def folder(patient: str = f.PATIENT) -> _model.Folder:
    return _model.Folder(entry_uuid=new_id(), title=_model.Text("Grossesse"), patient_id=patient,
                         unique_id=f.new_oid(), codes=[_model.Code("GROSSESSE", "1.2.250.1.999.9", "Grossesse")])


def lifecycle_scenario() -> Scenario:
    """Accepted and refused submissions whose outcome depends on the ones before them."""
    s = Scenario()
    a, b, c = s.doc(b"a"), s.doc(b"b"), s.doc(b"c")
    s.submit([a])
    first_ss = s.submit([b, c], ss_unique_id=f.new_oid())
    fd, d = folder(), s.doc(b"d")
    s.submit([d], folder=fd, into_folder=fd.entry_uuid)
    s.submit([s.doc(b"x", UNKNOWN_PATIENT)], patient=UNKNOWN_PATIENT)  # XDSUnknownPatientId
    a2 = s.doc(b"a2")
    s.submit([a2], links=((T.RPLC, a2.entry_uuid, a.entry_uuid),))  # deprecates a
    a3 = s.doc(b"a3")
    s.submit([a3], links=((T.RPLC, a3.entry_uuid, a.entry_uuid),))  # a is Deprecated now: refused
    b_addendum = s.doc(b"b+")
    s.submit([b_addendum], links=((T.APND, b_addendum.entry_uuid, b.entry_uuid),))
    b2 = s.doc(b"b2")
    s.submit([b2], links=((T.RPLC, b2.entry_uuid, b.entry_uuid),))  # deprecates b and its addendum
    s.submit([s.doc(b"b++")], links=((T.APND, new_id(), b_addendum.entry_uuid),))  # unresolved source + deprecated
    same_c = s.doc(b"c")  # the very same document again: accepted
    same_c.unique_id = c.unique_id
    s.submit([same_c])
    other_c = s.doc(b"not c")  # same uniqueId, other bytes: XDSNonIdenticalHash / Size
    other_c.unique_id = c.unique_id
    s.submit([other_c])
    s.submit([s.doc(b"no class", class_code=None)])  # structural error
    s.submit([s.doc(b"ss uid")], ss_unique_id=f.submission_set(f.PATIENT).unique_id)  # fresh uid: accepted
    dup_ss = f.submission_set(f.PATIENT)
    s.submit([s.doc(b"dup ss")], ss_unique_id=dup_ss.unique_id)
    s.submit([s.doc(b"dup ss 2")], ss_unique_id=dup_ss.unique_id)  # XDSDuplicateUniqueIdInRegistry
    taken = s.doc(b"taken id")
    taken.entry_uuid = a2.entry_uuid  # id already used
    s.submit([taken])
    e = s.doc(b"e")
    s.submit([e], into_folder=fd.entry_uuid)  # a registered Folder gets a member
    other = s.doc(b"other", f.OTHER_PATIENT)
    s.submit([other], patient=f.OTHER_PATIENT)
    x = s.doc(b"x")
    s.submit([x], links=((T.RPLC, x.entry_uuid, other.entry_uuid),))  # XDSPatientIdDoesNotMatch
    s.submit([s.doc(b"ref")], links=((T.HAS_MEMBER, first_ss, new_id()),))  # unresolved target
    d2 = s.doc(b"d2")
    s.submit([d2], links=((T.RPLC, d2.entry_uuid, d.entry_uuid),))  # the folder receives d2
    return s


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-partitioned"])
def backend(request: pytest.FixtureRequest) -> str:
    """PostgreSQL with and without registry_object hash-partitioned by patient (migration 0008_scale)."""
    return str(request.param)


@pytest.fixture
def new_registry(backend, tmp_path, request) -> Callable[[], Registry]:
    """Fresh registries (each its own database) with the two test patients, on the ``backend``."""
    names, made = itertools.count(), []

    def make() -> Registry:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / f'r{next(names)}.db'}"
        else:
            server = request.getfixturevalue("shared_postgres")
            name = f"bulk_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(f"host={server.root} user=app dbname=postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            url = f"postgresql+psycopg://app@/{name}?host={server.root}"
        store = Store(url, sqlite_synchronous="OFF")
        store.migrate(partitions=4 if backend == "postgresql-partitioned" else 0)
        made.append(store)
        registry = Registry(store, clock=lambda: NOW)
        registry.create_patients([f.PATIENT, f.OTHER_PATIENT])
        return registry

    yield make
    for store in made:
        store.dispose()


def dialect(backend: str) -> str:
    return backend.removesuffix("-partitioned")


def content(registry: Registry, input_ids: set[str]) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table. Ids the registry made up itself (associations created by the lifecycle) are
    named after what they link, so two runs compare."""
    with registry.store.read() as conn:
        made_up = {r.id: f"made-up({r.source}->{r.target})" for r in conn.execute(
            select(association.c.id, association.c.source, association.c.target)) if r.id not in input_ids}
        dump = {}
        for table in metadata.sorted_tables:
            rows = []
            for r in conn.execute(select(table)):
                row = tuple(made_up.get(v, v) if isinstance(v, str) else v for v in r)
                rows.append(tuple(_rename(v, made_up) for v in row))
            dump[table.name] = sorted(rows, key=repr)
    return dump


def orphans(registry: Registry) -> list[tuple[str, str]]:
    """(table, id) of rows whose object is not in registry_object (the tables have no foreign keys)."""
    with registry.store.read() as conn:
        return [(table, r[0]) for table, column in (("document_entry", "id"), ("submission_set", "id"),
                                                    ("folder", "id"), ("association", "id"),
                                                    ("object_value", "object_id"))
                for r in conn.execute(text(f"SELECT {column} FROM {table} WHERE {column} NOT IN "
                                           "(SELECT id FROM registry_object)"))]


def _rename(value: object, names: dict[str, str]) -> object:
    if isinstance(value, str) and value.startswith("<rim:"):  # the stored XML of an object
        for old, new in names.items():
            value = value.replace(old, new)
    return value


def ids_of(subs: list[RimSubmission]) -> set[str]:
    return {i for s in subs for o in s.objects for i in (o.id, *(c.id for c in o.classifications),
                                                          *(e.id for e in o.external_ids))}


def outcomes_by_position(subs: list[RimSubmission], registry: Registry) -> dict[int, tuple[object, ...]]:
    return {i: registry.register_submission(s).errors for i, s in enumerate(subs)}


def bulk_outcomes(report: BulkReport) -> dict[int, tuple[object, ...]]:
    found = {o.index: o.errors for o in (*report.refused, *report.warnings)}
    return {i: found.get(i, ()) for i in range(report.submissions)}


@pytest.mark.parametrize("batch", [1, 3, 100])
def test_bulk_gives_what_register_gives(new_registry, batch):
    scenario = lifecycle_scenario()
    one = new_registry()
    expected = outcomes_by_position(scenario.copy(), one)
    refused = {i for i, errors in expected.items() if errors}
    assert len(refused) == 9  # the scenario exercises every kind of refusal, each at its place

    many = new_registry()
    report = many.bulk_register(scenario.copy(), batch=batch)

    assert bulk_outcomes(report) == expected
    assert {o.index for o in report.refused} == refused
    assert report.registered == len(scenario.subs) - len(refused)
    assert report.transactions == -(-len(scenario.subs) // batch)
    ids = ids_of(scenario.subs)
    assert content(many, ids) == content(one, ids)
    assert orphans(one) == orphans(many) == []


def test_symbolic_ids_get_the_same_rows(new_registry, monkeypatch):
    """Submissions as ITI-42 senders write them (symbolic ids, SubmissionSet node at top level): with the same
    UUIDs handed out, the bulk path stores byte-identical rows and XML."""
    subs = [_symbolic(i) for i in range(7)]

    def run(register) -> dict[str, list[tuple[object, ...]]]:
        registry = new_registry()
        counter = itertools.count()
        monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(counter)))
        monkeypatch.setattr(registry_uuids, "urn_uuid", lambda: f"urn:uuid:{uuid.UUID(int=next(counter))}")
        register(registry, copy.deepcopy(subs))
        monkeypatch.undo()
        return content(registry, set())

    def singly(registry: Registry, batch: list[RimSubmission]) -> None:
        assert all(registry.register_submission(s).ok for s in batch)

    def together(registry: Registry, batch: list[RimSubmission]) -> None:
        assert registry.bulk_register(batch, batch=4).ok

    assert run(together) == run(singly)


def _symbolic(i: int) -> RimSubmission:
    docs = [f.Doc(b"%d-%d" % (i, j), f"Document0{j}") for j in range(1 + i % 3)]
    return read_registry_object_list(f.registry_object_list(docs, repository_attributes=True))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_workers_prepare_in_other_processes(new_registry):
    scenario = lifecycle_scenario()
    one = new_registry()
    expected = outcomes_by_position(scenario.copy(), one)
    many = new_registry()
    report = many.bulk_register(scenario.copy(), batch=4, workers=2)
    assert bulk_outcomes(report) == expected
    ids = ids_of(scenario.subs)
    assert content(many, ids) == content(one, ids)


def test_checks_take_a_constant_number_of_queries(new_registry, backend):
    """Set-based: the statements a batch runs do not grow with the number of submissions in it."""
    def statements(n: int) -> list[str]:
        s = Scenario()
        for i in range(n):
            s.submit([s.doc(b"%d-a" % i), s.doc(b"%d-b" % i)])
        registry = new_registry()
        seen: list[str] = []
        event.listen(registry.store.keyed_engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
        assert registry.bulk_register(s.copy(), batch=n).ok
        # Whether the registry is partitioned is asked once per database connection, not per batch.
        return [sql.split()[0] for sql in seen if "pg_partitioned_table" not in sql], \
            sum("pg_advisory_xact_lock" in sql for sql in seen)

    (few, few_locks), (many, many_locks) = statements(5), statements(50)
    assert many == few
    # patients, objects by id, uniqueIds (SubmissionSets and DocumentEntries): on PostgreSQL in one statement;
    # partitioned, the lock of the new ids
    assert few.count("SELECT") == (3 if backend == "sqlite" else 1) + few_locks
    assert few_locks == many_locks == (1 if backend == "postgresql-partitioned" else 0)
    if backend == "sqlite":
        assert few.count("INSERT") == 5  # one executemany per table (no folder rows)
    else:
        assert few.count("WITH") == 1   # every row of the batch in one statement (under ONE_STATEMENT_ROWS)


REFUSING_TRIGGER = {
    "sqlite": ["CREATE TRIGGER refuse BEFORE INSERT ON document_entry WHEN NEW.mime_type = 'text/x-refused' "
               "BEGIN SELECT RAISE(ABORT, 'refused by the database'); END"],
    "postgresql": ["CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   "IF NEW.mime_type = 'text/x-refused' THEN RAISE EXCEPTION 'value too long' USING ERRCODE = '22001'; "
                   "END IF; RETURN NEW; END $$",
                   "CREATE TRIGGER refuse BEFORE INSERT ON document_entry FOR EACH ROW EXECUTE FUNCTION refuse()"],
}


def test_database_refusal_replays_the_batch_one_by_one(new_registry, backend):
    """A batch the database refuses is rolled back whole, then each submission gets register()'s answer."""
    s = Scenario()
    docs = [s.doc(b"%d" % i, mime_type="text/x-refused" if i == 2 else "text/plain") for i in range(5)]
    for d in docs:
        s.submit([d])
    one, many = new_registry(), new_registry()
    for registry in (one, many):  # the database itself refuses the third document (as it could a too wide value)
        with registry.store.write() as conn:
            for sql in REFUSING_TRIGGER[dialect(backend)]:
                conn.exec_driver_sql(sql)
    expected = outcomes_by_position(s.copy(), one)
    assert [bool(e) for e in expected.values()] == [False, False, True, False, False]
    (refusal,) = expected[2]
    assert refusal.problem is {"sqlite": Problem.REGISTERED_CONCURRENTLY,
                               "postgresql": Problem.VALUE_DOES_NOT_FIT_STORAGE}[dialect(backend)]

    report = many.bulk_register(s.copy(), batch=5)

    assert bulk_outcomes(report) == expected
    assert report.registered == 4
    assert report.transactions == 4  # the batch's own transaction was rolled back
    ids = ids_of(s.subs)
    assert content(many, ids) == content(one, ids)


def test_a_failing_batch_leaves_nothing_and_stops(new_registry, monkeypatch):
    s = Scenario()
    for i in range(10):
        s.submit([s.doc(b"%d" % i)])
    registry = new_registry()
    real_insert, calls = bulk_module.insert_rows, itertools.count()

    def insert_then_fail(conn, rows):
        real_insert(conn, rows)  # the batch's rows are written ...
        if next(calls) == 1:
            raise exc.OperationalError("INSERT", {}, Exception("disk I/O error"))  # ... then the database fails

    monkeypatch.setattr(bulk_module, "insert_rows", insert_then_fail)
    read = []
    report = registry.bulk_register((read.append(i) or sub for i, sub in enumerate(s.copy())), batch=4)

    assert report.stopped is not None
    assert report.stopped.code is ErrorCode.REGISTRY_ERROR
    assert report.registered == 4
    assert report.transactions == 1
    assert [o.index for o in report.refused] == [4, 5, 6, 7]
    assert report.submissions == 8
    assert read == list(range(10))  # the batch after the failed one was read (prepared ahead), not registered
    with registry.store.read() as conn:
        stored = set(conn.execute(select(registry_object.c.id).where(registry_object.c.kind == "SS")).scalars())
    ss_ids = [sub.objects[0].id for sub in s.subs]
    assert stored == set(ss_ids[:4])  # nothing of the failed batch


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_create_patients(new_registry):
    registry = new_registry()
    keys = registry.create_patients(["123456789012345^^^&1.2.250.1.999&ISO", "1800599123456^^^&1.2.3&ISO^NH"])
    assert keys == ["123456789012345^^^&1.2.250.1.999&ISO", "1800599123456^^^&1.2.3&ISO"]
    assert registry.patient_exists("1800599123456^^^&1.2.3&ISO")
    with pytest.raises(PatientError, match="already exists"):
        registry.create_patients(["999^^^&1.2.3&ISO", f.PATIENT])
    with pytest.raises(PatientError, match="expected") as refused:
        registry.create_patients(["999^^^&1.2.3&ISO", "284067512345600^^^&1.2.250.1.213.1.4.10&ISO", "nope"])
    assert "is not a CX identifier" in str(refused.value)
    with pytest.raises(PatientError, match="appears 2 times"):
        registry.create_patients(["7^^^&1.2.3&ISO", "7^^^&1.2.3&ISO"])
    assert not registry.patient_exists("999^^^&1.2.3&ISO")


def test_a_failure_while_replaying_stops_where_it_happened(new_registry, monkeypatch):
    s = Scenario()
    for i in range(8):
        s.submit([s.doc(b"%d" % i)])
    registry = new_registry()
    real_insert, calls = bulk_module.insert_rows, itertools.count()

    def refuse_then_fail(conn, rows):
        n = next(calls)
        if n == 0:  # the first batch is refused by the database ...
            raise exc.IntegrityError("INSERT", {}, Exception("duplicate key"))
        if n == 2:  # ... and while it is replayed one by one, the database goes away
            raise exc.OperationalError("INSERT", {}, Exception("server closed the connection"))
        real_insert(conn, rows)

    monkeypatch.setattr(bulk_module, "insert_rows", refuse_then_fail)
    report = registry.bulk_register(s.copy(), batch=4)

    assert report.registered == 1  # the first submission, replayed alone
    assert [(o.index, o.errors[0].code) for o in report.refused] == [(i, ErrorCode.REGISTRY_ERROR) for i in (1, 2, 3)]
    assert report.submissions == 4
    assert report.stopped is not None
