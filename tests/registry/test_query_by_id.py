"""Stored queries that name objects by id or uniqueId (GetDocuments, ITI TF-2a 3.18.4.1.2.3.7.5) on PostgreSQL,
partitioned by patient or not (docs/registry-storage.md, "Look-ups by id"): the objects' rows are read once,
with their patients (the single-patient check and a VIHF's patient binding need no second look-up by id), a
uniqueId's latest version is read from its patient's partition only, and the look-ups by a unique key run on
PostgreSQL's generic plan of their prepared statement while the patient queries keep a plan made per execution.
The answers themselves are those of the e2e suite, which runs every module on both layouts."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import xds_factory as f
from sqlalchemy import event
from xds_client import adhoc_query

from registry import PatientMismatch, Registry, Store
from soap_wsdl import ns, parse_xml

GET = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
FIND = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
PATIENTS = [f"{body}{97 - int(body) % 97:02d}^^^&1.2.250.1.213.1.4.10&ISO"
            for body in (f"1{n:02d}017500{n:04d}" for n in range(1, 7))]


@pytest.fixture(scope="module", params=[0, 4], ids=["unpartitioned", "4-partitions"])
def registry(request: pytest.FixtureRequest, shared_postgres) -> Iterator[Registry]:
    """Three DocumentEntries of each patient; ``docs[(patient, n)]`` = (entryUUID, uniqueId)."""
    name = f"byid_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"host={shared_postgres.root} user=app dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    store = Store(f"postgresql+psycopg://app@/{name}?host={shared_postgres.root}")
    try:
        store.migrate(partitions=request.param)
        reg = Registry(store)
        reg.create_patients(PATIENTS)
        reg.docs = {}  # type: ignore[attr-defined]
        for patient in PATIENTS:
            for n in range(3):
                entry_uuid, unique_id = f"urn:uuid:{uuid.uuid4()}", f.new_oid()
                doc = f.Doc(b"%d" % n, entry_uuid, patient_id=patient, unique_id=unique_id)
                response = reg.register_request(f.submit_objects_request(
                    [doc], ss=f.submission_set(patient), repository_attributes=True))
                assert not response.errors, response
                reg.docs[(patient, n)] = (entry_uuid, unique_id)  # type: ignore[attr-defined]
        yield reg
    finally:
        store.dispose()


def _get(param: str, values: list[str]):  # type: ignore[no-untyped-def]
    return adhoc_query(GET, [(param, ["(" + ",".join(f"'{v}'" for v in values) + ")"])])


def _run(registry: Registry, request, **kw) -> tuple[bytes, list[tuple[str, object]]]:  # type: ignore[no-untyped-def]
    """The answer's bytes and the statements run that read ``registry_object``."""
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cur, statement, parameters, _ctx, _many):  # type: ignore[no-untyped-def]
        if "FROM registry_object" in statement:
            statements.append((statement, parameters))

    event.listen(registry.store.engine, "before_cursor_execute", capture)
    try:
        answer = registry.stored_query(request, **kw).data
    finally:
        event.remove(registry.store.engine, "before_cursor_execute", capture)
    return answer, statements


def _returned(answer: bytes) -> list[str]:
    root = parse_xml(answer)
    assert root.get("status", "").endswith(":Success"), answer[:800]
    return [e.get("id", "") for e in root.iter(f"{{{ns.RIM}}}ExtrinsicObject")]


def _error_codes(answer: bytes) -> list[str]:
    return [e.get("errorCode", "") for e in parse_xml(answer).iter(f"{{{ns.RS}}}RegistryError")]


def test_documents_by_entry_uuid_are_read_once_with_their_patient(registry):
    docs = registry.docs
    wanted = [docs[(PATIENTS[0], 0)][0], docs[(PATIENTS[0], 2)][0]]
    answer, statements = _run(registry, _get("$XDSDocumentEntryEntryUUID", wanted))
    assert sorted(_returned(answer)) == sorted(wanted)
    assert len(statements) == 1, statements  # no second look-up by id for the single-patient check
    # Bound to the document's patient (a VIHF's patient): still one statement; bound to another: refused.
    answer, statements = _run(registry, _get("$XDSDocumentEntryEntryUUID", wanted), patient_key=PATIENTS[0])
    assert sorted(_returned(answer)) == sorted(wanted)
    assert len(statements) == 1, statements
    with pytest.raises(PatientMismatch):
        registry.stored_query(_get("$XDSDocumentEntryEntryUUID", wanted), patient_key=PATIENTS[1])


def test_documents_of_two_patients_are_refused_whichever_way_they_are_named(registry):
    docs = registry.docs
    for param, index in (("$XDSDocumentEntryEntryUUID", 0), ("$XDSDocumentEntryUniqueId", 1)):
        answer = registry.stored_query(_get(param, [docs[(PATIENTS[0], 1)][index], docs[(PATIENTS[1], 1)][index]])
                                       ).data
        assert _error_codes(answer) == ["XDSResultNotSinglePatient"], answer[:800]
        one = registry.stored_query(_get(param, [docs[(PATIENTS[1], 1)][index], docs[(PATIENTS[1], 2)][index]])).data
        assert sorted(_returned(one)) == sorted([docs[(PATIENTS[1], 1)][0], docs[(PATIENTS[1], 2)][0]])


def test_a_unique_id_s_latest_version_is_read_from_its_patient_s_partition(registry):
    entry_uuid, unique_id = registry.docs[(PATIENTS[2], 1)]
    answer, statements = _run(registry, _get("$XDSDocumentEntryUniqueId", [unique_id]))
    assert _returned(answer) == [entry_uuid]
    (_find, _), (read, parameters) = statements  # the versions holding the uniqueId, then the latest one
    assert "patient_key IN" in read, read
    if registry.store.partitions():
        with registry.store.engine.connect() as conn:
            conn.exec_driver_sql("SET enable_seqscan = off")  # a few rows per partition: which index, not whether
            plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN (COSTS OFF) " + read, parameters))
        assert len(set(re.findall(r" on (registry_object_p\d+)", plan))) == 1, plan  # the patient's partition


def test_lookups_by_unique_key_use_a_generic_plan_and_patient_queries_a_plan_per_execution(registry):
    """psycopg prepares a statement run 5 times on a connection; PostgreSQL then plans a look-up by entryUUID
    or uniqueId once (generic plan), while FindDocuments is still planned with each execution's values."""
    docs = registry.docs
    for n in range(8):  # one connection: the queries run one after the other
        registry.stored_query(_get("$XDSDocumentEntryEntryUUID", [docs[(PATIENTS[n % 6], n % 3)][0]]))
        registry.stored_query(_get("$XDSDocumentEntryUniqueId", [docs[(PATIENTS[n % 6], n % 3)][1]]))
        registry.stored_query(adhoc_query(FIND, [("$XDSDocumentEntryPatientId", [f"'{PATIENTS[n % 6]}'"]),
                                                 ("$XDSDocumentEntryStatus", [f"('{APPROVED}')"])]))
    with registry.store.engine.connect() as conn:
        prepared = conn.exec_driver_sql("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
                                        ).all()
        mode = conn.exec_driver_sql("SHOW plan_cache_mode").scalar()
    assert mode == "force_custom_plan"  # SET LOCAL: the session's setting is back after each query

    def plans(fragment: str) -> list[tuple[int, int]]:
        return [(g, c) for s, g, c in prepared if fragment in s and "FROM registry_object" in s]

    for fragment in ("registry_object.id IN", "registry_object.unique_id IN"):
        assert [g >= 1 and c == 0 for g, c in plans(fragment)] == [True], prepared
    # FindDocuments, and the read of a uniqueId's latest version (pruned by its patient)
    assert [g == 0 and c >= 1 for g, c in plans("registry_object.patient_key IN")] == [True, True], prepared
