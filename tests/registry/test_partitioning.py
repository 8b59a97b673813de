"""registry_object hash-partitioned by patient on PostgreSQL (migration 0008_scale, docs/registry-storage.md):
chosen when the schema is made, refused where it cannot be, and a patient's stored query reads one partition
through that partition's patient index. (The registry's answers on a partitioned database are those of the
e2e suite, whose `node` fixture runs every module on one, and of tests/registry/test_bulk.py.)"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg
import pytest
import xds_factory as f
from click.testing import CliRunner
from sqlalchemy import event, func, select
from xds_client import adhoc_query

from registry import Registry, RegistryResponse, Store
from registry._catalogue import Problem
from registry._schema import registry_object
from registry._submission import register
from server.cli import main

FIND = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
PATIENTS = [f"{body}{97 - int(body) % 97:02d}^^^&1.2.250.1.213.1.4.10&ISO"
            for body in (f"1{n:02d}017500{n:04d}" for n in range(1, 9))]


def fresh_database(shared_postgres) -> str:
    name = f"part_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"host={shared_postgres.root} user=app dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://app@/{name}?host={shared_postgres.root}"


@pytest.fixture
def partitioned(shared_postgres):
    store = Store(fresh_database(shared_postgres))
    try:
        store.migrate(partitions=4)
        registry = Registry(store)
        registry.create_patients(PATIENTS)
        for patient in PATIENTS:
            for n in range(3):
                doc = f.Doc(b"%d" % n, f"Document{n}", patient_id=patient)
                response = registry.register_request(f.submit_objects_request(
                    [doc], ss=f.submission_set(patient), repository_attributes=True))
                assert not response.errors, response
        yield registry
    finally:
        store.dispose()


def test_partitions_are_made_when_the_schema_is(partitioned):
    store = partitioned.store
    assert store.partitions() == 4
    store.migrate(partitions=4)  # the same choice again: nothing to do
    with pytest.raises(ValueError, match="created with 4 partitions, not 8"):
        store.migrate(partitions=8)
    with store.read() as conn:
        per_partition = dict(conn.exec_driver_sql(
            "SELECT tableoid::regclass::text, count(*) FROM registry_object WHERE patient_key IS NOT NULL "
            "GROUP BY 1").all())
    assert sum(per_partition.values()) == len(PATIENTS) * 3 * 2  # a DocumentEntry and a SubmissionSet each
    assert len(per_partition) > 1  # the patients are spread over the partitions


def test_find_documents_reads_one_partition_through_its_patient_index(partitioned):
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cur, statement, parameters, _ctx, _many):  # type: ignore[no-untyped-def]
        if "document_entry" in statement and statement.lstrip().startswith("SELECT"):
            statements.append((statement, parameters))

    engine = partitioned.store.engine
    event.listen(engine, "before_cursor_execute", capture)
    answer = partitioned.stored_query(adhoc_query(FIND, [
        ("$XDSDocumentEntryPatientId", [f"'{PATIENTS[0]}'"]),
        ("$XDSDocumentEntryStatus", [f"('{APPROVED}')"])])).data
    event.remove(engine, "before_cursor_execute", capture)
    assert answer.count(b"<rim:ExtrinsicObject") == 3
    (statement, parameters), = statements
    with engine.connect() as conn:
        # A few rows per partition: PostgreSQL would rather read them all; what matters is which index it can use.
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN (COSTS OFF) " + statement, parameters))
    scanned = {word for word in plan.replace("(", " ").split() if word.startswith("registry_object_p")}
    assert len({name.split("_patient")[0] for name in scanned}) == 1, plan  # pruned to the patient's partition
    assert "patient_key_kind_status" in plan, plan


def test_partitioning_needs_postgresql(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    with pytest.raises(ValueError, match="needs PostgreSQL"):
        store.migrate(partitions=2)
    assert not store.schema_is_current()  # refused before anything was made
    store.dispose()
    r = CliRunner().invoke(main, ["init", "--data", str(tmp_path / "node"), "--partitions", "2"])
    assert r.exit_code == 2
    assert "needs PostgreSQL" in r.output


def test_dmp_init_partitions_a_postgresql_registry(shared_postgres, tmp_path):
    url = fresh_database(shared_postgres)
    r = CliRunner().invoke(main, ["init", "--data", str(tmp_path), "--database-url", url, "--partitions", "3"])
    assert r.exit_code == 0, r.output
    store = Store(url)
    assert store.partitions() == 3
    store.dispose()
    r = CliRunner().invoke(main, ["init", "--data", str(tmp_path), "--partitions", "5"])
    assert r.exit_code == 2
    assert "created with 3 partitions, not 5" in r.output


def test_one_uuid_reused_by_two_concurrent_submissions_of_two_patients_is_registered_once(shared_postgres):
    """Partitioned, the primary key of registry_object is (id, patient_key): a DocumentEntry of one patient and a
    SubmissionSet of another with the same UUID would both fit it (and the per-kind tables). The registration
    that comes second waits for the first to end, then is refused with the duplicate UUID error."""
    store = Store(fresh_database(shared_postgres))
    try:
        store.migrate(partitions=4)
        registry = Registry(store)
        registry.create_patients(PATIENTS[:2])
        taken = f"urn:uuid:{uuid.uuid4()}"
        first = Registry.read_request(f.submit_objects_request(
            [f.Doc(b"a", taken, patient_id=PATIENTS[0])], ss=f.submission_set(PATIENTS[0]), repository_attributes=True))
        ss = f.submission_set(PATIENTS[1])
        ss.entry_uuid = taken
        second = f.submit_objects_request([f.Doc(b"b", "Document01", patient_id=PATIENTS[1])], ss=ss,
                                          repository_attributes=True)
        assert not isinstance(first, RegistryResponse)
        with ThreadPoolExecutor(1) as pool:
            with store.write() as conn:
                assert not register(conn, first, require_repository_attributes=True, now="20240601000000")
                answer = pool.submit(registry.register_request, second)
                # Still uncommitted: the second registration waits on its lock of the UUID (or, without one, is
                # done already and wrongly registered: then the assertions below fail).
                _wait_for_a_lock_or(answer, store)
            response = answer.result(timeout=60)
        assert [e.problem for e in response.errors] == [Problem.ID_TAKEN], response
        with store.read() as conn:
            assert conn.execute(select(func.count()).select_from(registry_object)
                                .where(registry_object.c.id == taken)).scalar() == 1
    finally:
        store.dispose()


def _wait_for_a_lock_or(answer: Future[RegistryResponse], store: Store) -> None:
    deadline = time.monotonic() + 30
    while not answer.done() and time.monotonic() < deadline:
        with store.engine.connect() as conn:
            if conn.exec_driver_sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                                    ).scalar():
                return
        time.sleep(0.02)
