"""ITI-42 Register Document Set-b on POST /xds/registry through real HTTP against a real `dmp serve`, and the
registry and repository actors run as two separate nodes (ITI-41 to the repository node, ITI-42 from it to
the registry node). docs/conformance.md §3, §4."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from nodes import RunningNode, database_url, make_node, start_node
from pg import PostgresServer, postgres_fixture  # noqa: F401 - the `postgres` fixture
from sqlalchemy import select
from xds_client import ITI41, ITI42, ITI43, Reply, envelope, post, retrieve_request
from xds_factory import (
    OTHER_PATIENT,
    PATIENT,
    REPOSITORY_ID,
    Doc,
    content_id,
    document_entry,
    provide_and_register,
    submission_set,
    submit_objects_request,
)

from registry import Problem, Registry, Store, _model, _rim, _rim_write
from registry._schema import association, registry_object
from registry._vocabulary import AssociationType, Status
from soap_wsdl import ns
from soap_wsdl._mtom import OutgoingAttachment

HAS_MEMBER = AssociationType.HAS_MEMBER.value
RPLC = AssociationType.RPLC.value
UNKNOWN_PATIENT = "255069999999934^^^&1.2.250.1.213.1.4.10&ISO"


# --- building requests -----------------------------------------------------------------------------------


def doc(content: bytes = b"registered only", name: str = "Document01", **kw: Any) -> Doc:
    return Doc(content, name, **kw)


def entry(d: Doc, **changes: object) -> _model.DocumentEntry:
    """The DocumentEntry an ITI-42 source sends: hash, size and repositoryUniqueId included."""
    de = document_entry(d, repository_attributes=True)
    for name, value in changes.items():
        assert hasattr(de, name), name
        setattr(de, name, value)
    return de


def member(ss: _model.SubmissionSet, target: str) -> _model.Association:
    return _model.Association(entry_uuid=f"member-{target}", association_type=HAS_MEMBER, source=ss.entry_uuid,
                              target=target, submission_set_status="Original")


def request(ss: _model.SubmissionSet, entries: Sequence[_model.DocumentEntry],
            associations: Sequence[_model.Association] = (), extra: Sequence[_rim.RimObject] = ()
            ) -> etree._Element:
    """lcm:SubmitObjectsRequest: ``ss``, each entry with its SubmissionSet HasMember, then ``associations``."""
    objects: list[_rim.RimObject] = []
    for de in entries:
        objects.append(_model.document_entry_to_rim(de))
        objects.append(_model.association_to_rim(member(ss, de.entry_uuid)))
    objects += [_model.association_to_rim(a) for a in associations]
    objects += extra
    return submit_objects_request([], ss=ss, extra=objects)


def register(node: RunningNode, body: etree._Element, *, message_id: str | None = None) -> Reply:
    env = envelope(ITI42, body, message_id=message_id, to=node.registry)
    return post(node.registry, ITI42, body, raw_envelope=env, mtom=False)


def register_docs(node: RunningNode, docs: list[Doc], **kw: object) -> Reply:
    return register(node, submit_objects_request(docs, repository_attributes=True, **kw))


def rplc(new: str, old: str) -> _model.Association:
    return _model.Association(entry_uuid=f"rplc-{new}", association_type=RPLC, source=new, target=old)


# --- reading the registry's database -----------------------------------------------------------------------


def objects_by_unique_id(node: RunningNode, unique_id: str) -> list[dict[str, object]]:
    store = Store(node.config.database_url)
    try:
        with store.read() as conn:
            ro = registry_object.c
            rows = conn.execute(select(registry_object).where(ro.unique_id == unique_id)).mappings().all()
            return [dict(r) for r in rows]
    finally:
        store.dispose()


def the_object(node: RunningNode, unique_id: str) -> dict[str, object]:
    (row,) = objects_by_unique_id(node, unique_id)
    return row


def associations_to(node: RunningNode, target: str) -> list[dict[str, object]]:
    store = Store(node.config.database_url)
    try:
        with store.read() as conn:
            rows = conn.execute(select(association).where(association.c.target == target)).mappings().all()
            return [dict(r) for r in rows]
    finally:
        store.dispose()


def status_of(node: RunningNode, unique_id: str) -> str:
    return str(the_object(node, unique_id)["status"])


def is_uuid_urn(value: object) -> bool:
    assert isinstance(value, str)
    assert value.startswith("urn:uuid:"), value
    return str(uuid.UUID(value.removeprefix("urn:uuid:"))) == value.removeprefix("urn:uuid:")


def only_error(reply: Reply) -> dict[str, str]:
    assert reply.status == "Failure"
    assert len(reply.errors) == 1, reply.errors
    return reply.errors[0]


# --- ITI-42 on one node --------------------------------------------------------------------------------------


def test_register_success_action_and_relates_to(node):
    d = doc()
    mid = f"urn:uuid:{uuid.uuid4()}"
    reply = register(node, submit_objects_request([d], repository_attributes=True), message_id=mid)
    assert reply.http_status == 200
    assert reply.content_type.startswith("application/soap+xml")
    assert reply.status == "Success", reply.errors
    assert reply.errors == []
    assert reply.action == "urn:ihe:iti:2007:RegisterDocumentSet-bResponse"
    assert reply.relates_to == mid
    assert reply.body.tag == f"{{{ns.RS}}}RegistryResponse"
    assert status_of(node, d.unique_id) == Status.APPROVED.value


@pytest.mark.parametrize(("attribute", "slot"), [("hash", "hash"), ("size", "size"),
                                                 ("repository_unique_id", "repositoryUniqueId")])
def test_repository_attribute_missing(node, attribute, slot):
    d = doc()
    ss = submission_set()
    reply = register(node, request(ss, [entry(d, **{attribute: None})]))
    error = only_error(reply)
    assert reply.problems == [Problem.SLOT_MISSING]
    assert f"'{slot}'" in error["codeContext"]
    assert error["location"] == "Document01"
    assert objects_by_unique_id(node, d.unique_id) == []
    assert objects_by_unique_id(node, ss.unique_id) == []


def test_submission_set_absent(node):
    d = doc()
    rol = etree.Element(f"{{{ns.RIM}}}RegistryObjectList", nsmap={"rim": ns.RIM})
    _rim_write.write_object(_model.document_entry_to_rim(entry(d)), rol)
    sor = etree.Element(f"{{{ns.LCM}}}SubmitObjectsRequest", nsmap={"lcm": ns.LCM, "rim": ns.RIM})
    sor.append(rol)
    reply = register(node, sor)
    assert reply.status == "Failure"
    assert set(reply.error_codes) == {"XDSRegistryMetadataError"}
    assert Problem.SUBMISSION_SET_COUNT("SubmissionSet", count=0).context in [e["codeContext"] for e in reply.errors]
    assert objects_by_unique_id(node, d.unique_id) == []


def test_two_submission_sets(node):
    d = doc()
    ss, ss2 = submission_set(), replace(submission_set(), entry_uuid="SubmissionSet02")
    reply = register(node, request(ss, [entry(d)], extra=[_model.submission_set_to_rim(ss2)]))
    assert reply.status == "Failure"
    assert set(reply.error_codes) == {"XDSRegistryMetadataError"}
    assert Problem.SUBMISSION_SET_COUNT("SubmissionSet", count=2).context in [e["codeContext"] for e in reply.errors]
    for uid in (d.unique_id, ss.unique_id, ss2.unique_id):
        assert objects_by_unique_id(node, uid) == []


def test_symbolic_ids_are_replaced_by_uuids(node):
    d1, d2 = doc(b"one", "Document01"), doc(b"two", "Document02")
    ss = submission_set()
    assert register_docs(node, [d1, d2], ss=ss).status == "Success"

    ss_row = the_object(node, ss.unique_id)
    de_rows = [the_object(node, d.unique_id) for d in (d1, d2)]
    for row in (ss_row, *de_rows):
        assert is_uuid_urn(row["id"])
        assert row["lid"] == row["id"]
        assert row["version"] == 1
        assert row["status"] == Status.APPROVED.value
        assert row["submission_set_id"] == ss_row["id"]
    assert len({ss_row["id"], *(r["id"] for r in de_rows)}) == 3
    assert {r["kind"] for r in de_rows} == {"DE"}
    assert ss_row["kind"] == "SS"

    for de_row in de_rows:
        (link,) = associations_to(node, str(de_row["id"]))
        assert is_uuid_urn(link["id"])
        assert link["source"] == ss_row["id"]
        assert link["association_type"] == HAS_MEMBER
        as_row = _row_by_id(node, str(link["id"]))
        assert (as_row["lid"], as_row["version"], as_row["status"]) == (link["id"], 1, Status.APPROVED.value)
        # The stored ebRIM carries the registry's ids everywhere a reference was symbolic.
        stored = etree.fromstring(str(de_row["xml"]).encode())
        assert stored.get("id") == stored.get("lid") == de_row["id"]
        assert stored.find(f"{{{ns.RIM}}}VersionInfo").get("versionName") == "1"
        nested = [*stored.iter(f"{{{ns.RIM}}}Classification"), *stored.iter(f"{{{ns.RIM}}}ExternalIdentifier")]
        assert nested
        for el in nested:
            assert is_uuid_urn(el.get("id"))
            assert (el.get("classifiedObject") or el.get("registryObject")) == de_row["id"]
        assert "Document0" not in str(de_row["xml"])


def _row_by_id(node: RunningNode, object_id: str) -> dict[str, object]:
    store = Store(node.config.database_url)
    try:
        with store.read() as conn:
            row = conn.execute(select(registry_object).where(registry_object.c.id == object_id)).mappings().one()
            return dict(row)
    finally:
        store.dispose()


def test_explicit_uuid_is_kept_and_cannot_be_registered_twice(node):
    de_id = f"urn:uuid:{uuid.uuid4()}"
    first = doc(b"explicit", de_id)
    assert register_docs(node, [first]).status == "Success"
    row = the_object(node, first.unique_id)
    assert row["id"] == row["lid"] == de_id

    again = doc(b"another document, same entryUUID", de_id)
    reply = register_docs(node, [again])
    error = only_error(reply)
    assert reply.problems == [Problem.ID_TAKEN]
    assert de_id in error["codeContext"]
    assert objects_by_unique_id(node, again.unique_id) == []


@pytest.mark.parametrize("end", ["target", "source"])
def test_association_to_unknown_uuid(node, end):
    d = doc()
    ss = submission_set()
    unknown = f"urn:uuid:{uuid.uuid4()}"
    if end == "target":
        extra = _model.Association(entry_uuid="Assoc-ref", association_type=HAS_MEMBER, source=ss.entry_uuid,
                                   target=unknown, submission_set_status="Reference")
    else:  # a Folder -> DocumentEntry membership whose Folder does not exist
        extra = _model.Association(entry_uuid="Assoc-ref", association_type=HAS_MEMBER, source=unknown,
                                   target=d.symbolic_id)
    objects = [extra] if end == "target" else [extra, member(ss, "Assoc-ref")]
    reply = register(node, request(ss, [entry(d)], objects))
    assert reply.status == "Failure"
    unresolved = [e for e, p in zip(reply.errors, reply.problems, strict=True) if p is Problem.REFERENCE_UNRESOLVED]
    assert len(unresolved) == 1, reply.errors
    assert unknown in unresolved[0]["codeContext"]
    assert unresolved[0]["location"] == "Assoc-ref"
    assert objects_by_unique_id(node, d.unique_id) == []


BAD_VALUES = [
    # (what is broken, how, attribute named in codeContext, bad value)
    ("creationTime", {"creation_time": "2024-03-12"}, "creationTime", "2024-03-12"),
    ("serviceStartTime", {"service_start_time": "20241332"}, "serviceStartTime", "20241332"),
    ("sourcePatientId", {"source_patient_id": "IPP0001"}, "sourcePatientId", "IPP0001"),
    ("repositoryUniqueId", {"repository_unique_id": "1.2.abc"}, "repositoryUniqueId", "1.2.abc"),
    ("legalAuthenticator", {"legal_authenticator": "^^^^^^^^&1.2.3&ISO"}, "legalAuthenticator",
     "^^^^^^^^&1.2.3&ISO"),
    ("size", {"size": 10**20}, "size", str(10**20)),
    ("submissionTime", {"ss.submission_time": "2024031210150"}, "submissionTime", "2024031210150"),
    ("sourceId", {"ss.source_id": "1.2.250.x"}, "XDSSubmissionSet.sourceId", "1.2.250.x"),
    ("SS uniqueId", {"ss.unique_id": "01.2.3"}, "XDSSubmissionSet.uniqueId", "01.2.3"),
]


@pytest.mark.parametrize(("changes", "attribute", "value"), [b[1:] for b in BAD_VALUES],
                         ids=[b[0] for b in BAD_VALUES])
def test_bad_value_is_named_with_its_attribute(node, changes, attribute, value):
    d = doc()
    ss = submission_set()
    de = entry(d)
    for name, v in changes.items():
        target, _, attr = name.rpartition(".")
        setattr(ss if target == "ss" else de, attr, v)
    reply = register(node, request(ss, [de]))
    error = only_error(reply)
    assert reply.problems == [Problem.VALUE_INVALID]
    assert error["codeContext"].startswith(f"{attribute}: ")
    assert f"'{value}'" in error["codeContext"]
    assert error["location"] == ("SubmissionSet01" if any(k.startswith("ss.") for k in changes) else "Document01")
    assert objects_by_unique_id(node, d.unique_id) == []


def test_rplc_deprecates_the_original(node):
    original = doc(b"version 1")
    assert register_docs(node, [original]).status == "Success"
    old_id = str(the_object(node, original.unique_id)["id"])

    replacement = doc(b"version 2", "Document02")
    ss = submission_set()
    reply = register(node, request(ss, [entry(replacement)], [rplc(replacement.symbolic_id, old_id)]))
    assert reply.status == "Success", reply.errors
    assert status_of(node, original.unique_id) == Status.DEPRECATED.value
    new_row = the_object(node, replacement.unique_id)
    assert new_row["status"] == Status.APPROVED.value
    (link,) = [a for a in associations_to(node, old_id) if a["association_type"] == RPLC]
    assert link["source"] == new_row["id"]

    # A deprecated document cannot be replaced again ...
    third = doc(b"version 3", "Document03")
    reply = register(node, request(submission_set(), [entry(third)], [rplc(third.symbolic_id, old_id)]))
    error = only_error(reply)
    assert reply.problems == [Problem.RELATIONSHIP_TARGET_DEPRECATED]
    assert old_id in error["codeContext"]
    assert objects_by_unique_id(node, third.unique_id) == []
    # ... and nothing of the refused submission changed the registry.
    assert status_of(node, original.unique_id) == Status.DEPRECATED.value
    assert status_of(node, replacement.unique_id) == Status.APPROVED.value


def test_rplc_to_another_patients_document(node):
    theirs = doc(b"other patient", patient_id=OTHER_PATIENT)
    assert register_docs(node, [theirs]).status == "Success"
    their_id = str(the_object(node, theirs.unique_id)["id"])

    mine = doc(b"my replacement", "Document02")
    error = only_error(register(node, request(submission_set(PATIENT), [entry(mine)],
                                              [rplc(mine.symbolic_id, their_id)])))
    assert error["errorCode"] == "XDSPatientIdDoesNotMatch"
    assert error["location"] == f"rplc-{mine.symbolic_id}"
    assert status_of(node, theirs.unique_id) == Status.APPROVED.value
    assert objects_by_unique_id(node, mine.unique_id) == []


# --- registry and repository as two actors ------------------------------------------------------------------


def _provide(repository: RunningNode, docs: list[Doc], **kw: object) -> Reply:
    return post(repository.repository, ITI41, provide_and_register(docs, **kw),
                attachments=[OutgoingAttachment(content_id(d), d.mime_type, d.content) for d in docs])


def _retrieve(repository: RunningNode, uids: list[str]) -> Reply:
    return post(repository.repository, ITI43, retrieve_request(REPOSITORY_ID, uids))


def _registered(node: RunningNode, unique_id: str) -> bool:
    store = Store(node.config.database_url)
    try:
        return Registry(store).is_registered(unique_id)
    finally:
        store.dispose()


def _blob_store_files(node: RunningNode) -> set[Path]:
    """Every file under the blob directory except server logs (documents, sidecars, markers, spool files)."""
    return {p.relative_to(node.config.blob_dir) for p in node.config.blob_dir.rglob("*") if p.is_file()}


def _start_repository(tmp: Path, registry_url: str) -> RunningNode:
    # A repository in front of a remote registry has no consent state: it runs only with --no-consent.
    return start_node(make_node(tmp), "--registry-url", registry_url, "--no-consent")


def _start_remote_registry(tmp: Path, url: str | None = None) -> RunningNode:
    """Node A for a repository-only node B. B forwards ITI-42 without a VIHF of its own (a node-to-node
    credential is not designed yet), so A runs with --no-vihf (development mode) in these tests."""
    return start_node(make_node(tmp, database_url=url), "--no-vihf")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def registry_node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """Node A: the registry of ``repository_node`` (on SQLite and on PostgreSQL, like ``node``); see
    :func:`_start_remote_registry`."""
    running = _start_remote_registry(tmp_path_factory.mktemp("registry"), database_url(request.param, request))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def repository_node(registry_node: RunningNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """Node B: a repository whose registry is ``registry_node`` (A), reached over ITI-42."""
    running = _start_repository(tmp_path_factory.mktemp("repository"), registry_node.registry)
    yield running
    running.stop()


def test_repository_only_node_offers_no_iti42(repository_node):
    reply = post(repository_node.registry, ITI42, submit_objects_request([doc()], repository_attributes=True),
                 mtom=False)
    # B runs no registry: its registry endpoint offers no ITI-42.
    assert reply.http_status == 400
    assert "not supported" in reply.fault_reason


def test_provide_to_repository_registers_in_remote_registry(registry_node, repository_node):
    node = registry_node
    d = doc(b"stored in B, registered in A\r\n")
    reply = _provide(repository_node, [d])
    assert reply.status == "Success", reply.errors
    assert reply.action == "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"
    assert _retrieve(repository_node, [d.unique_id]).documents() == {d.unique_id: d.content}
    assert _registered(node, d.unique_id)
    assert not _registered(repository_node, d.unique_id)
    row = the_object(node, d.unique_id)
    assert is_uuid_urn(row["id"])
    assert row["status"] == Status.APPROVED.value
    assert not any(repository_node.config.blob_dir.joinpath(".pending").iterdir())


def test_registry_error_is_relayed_unchanged_and_blob_removed(registry_node, repository_node):
    node = registry_node
    before = _blob_store_files(repository_node)
    d = doc(b"nobody's document", patient_id=UNKNOWN_PATIENT)
    ss = submission_set(UNKNOWN_PATIENT)
    reply = _provide(repository_node, [d], ss=ss)
    assert reply.status == "Failure"
    assert reply.error_codes == ["XDSUnknownPatientId"]
    # What A itself answers for the same metadata (as B forwards it, with hash, size, repositoryUniqueId).
    direct = register(node, submit_objects_request([d], ss=ss, repository_attributes=True))
    assert direct.errors == reply.errors
    assert reply.problems == [Problem.PATIENT_UNKNOWN]
    assert UNKNOWN_PATIENT.split("^")[0] in reply.errors[0]["codeContext"]
    assert _blob_store_files(repository_node) == before
    assert _retrieve(repository_node, [d.unique_id]).error_codes == ["XDSDocumentUniqueIdError"]
    assert not _registered(node, d.unique_id)


def test_registry_down_gives_registry_not_available(tmp_path):
    registry = _start_remote_registry(tmp_path / "a")
    repository = _start_repository(tmp_path / "b", registry.registry)
    try:
        kept = doc(b"registered while A was up")
        assert _provide(repository, [kept]).status == "Success"
        before = _blob_store_files(repository)

        registry.stop(signal.SIGKILL)
        lost = doc(b"A is gone", "Document02")
        reply = _provide(repository, [lost])
        assert reply.http_status == 200
        error = only_error(reply)
        assert reply.problems == [Problem.REGISTRY_UNREACHABLE]
        assert registry.registry in error["codeContext"]
        assert _blob_store_files(repository) == before
        assert not _registered(registry, lost.unique_id)

        # B keeps serving: what it stored before is still retrievable, and so are errors.
        assert _retrieve(repository, [kept.unique_id]).documents() == {kept.unique_id: kept.content}
        assert _retrieve(repository, [lost.unique_id]).error_codes == ["XDSDocumentUniqueIdError"]
        assert _provide(repository, [doc(b"still down", "Document03")]).error_codes == ["XDSRegistryNotAvailable"]
    finally:
        repository.stop()
        registry.stop()


# --- the same registry on PostgreSQL ---------------------------------------------------------------------------


def test_register_on_postgresql(tmp_path, postgres: PostgresServer):
    pg_node = start_node(make_node(tmp_path / "node", database_url=postgres.url))
    try:
        d = doc(b"registered in PostgreSQL")
        reply = register_docs(pg_node, [d])
        assert reply.status == "Success", reply.errors
        row = the_object(pg_node, d.unique_id)
        assert is_uuid_urn(row["id"])
        assert row["lid"] == row["id"]
        assert row["status"] == Status.APPROVED.value

        # A value wider than ebRIM allows (and than its column): the sender's metadata is at fault (not an
        # unavailable database, which would invite retries), and nothing is registered.
        wide = doc(b"wide mimeType", mime_type="application/" + "x" * 300)
        reply = register_docs(pg_node, [wide])
        only_error(reply)
        assert reply.problems == [Problem.MIME_TYPE_TOO_LONG]
        assert objects_by_unique_id(pg_node, wide.unique_id) == []
        assert register_docs(pg_node, [doc(b"and the registry goes on")]).status == "Success"
    finally:
        pg_node.stop()


def test_submission_set_member_of_a_submission_set_is_refused(node):
    d = doc()
    ss = submission_set()
    to_itself = _model.Association(entry_uuid="ss-in-ss", association_type=HAS_MEMBER, source=ss.entry_uuid,
                                   target=ss.entry_uuid)
    reply = register(node, request(ss, [entry(d)], [to_itself]))
    error = only_error(reply)
    assert reply.problems == [Problem.SUBMISSION_SET_IN_SUBMISSION_SET]
    assert error["location"] == "ss-in-ss"
    assert "ss-in-ss" in error["codeContext"]
    assert objects_by_unique_id(node, d.unique_id) == []


def test_submission_set_member_of_a_registered_submission_set_is_refused(node):
    first = submission_set()
    assert register(node, request(first, [entry(doc(b"first"))])).status == "Success"
    (registered,) = objects_by_unique_id(node, first.unique_id)
    ss = submission_set()
    link = _model.Association(entry_uuid="ss-in-old-ss", association_type=HAS_MEMBER, source=ss.entry_uuid,
                              target=str(registered["id"]), submission_set_status="Reference")
    reply = register(node, request(ss, [entry(doc(b"second"))], [link]))
    error = only_error(reply)
    assert reply.problems == [Problem.MEMBER_OF_WRONG_KIND]
    assert error["location"] == "ss-in-old-ss"
