"""ITI-57 Update Document Set through real HTTP: DMP archive / un-archive / delete, IHE status changes,
metadata updates (new versions, masking by confidentialityCode) and their error codes (ITI TF-3 4.1.10;
docs/conformance.md §8)."""

from __future__ import annotations

import pytest
import xds_factory as f
from vihf_client import alice_claims, fresh_vihf, patient_ins
from xds_client import ITI18, ITI42, ITI57, adhoc_query, post

from registry import Problem, Registry, Store, _model, _rim
from registry._vocabulary import AssociationType
from soap_wsdl import ns

FIND = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET_DOCS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
ARCHIVED = "urn:asip:ci-sis:2010:StatusType:Archived"
DELETED = "urn:asip:ci-sis:2010:StatusType:Deleted"
RIM = ns.RIM


def register(node, doc):
    reply = post(node.registry, ITI42, f.submit_objects_request([doc], repository_attributes=True), mtom=False)
    assert reply.status == "Success", reply.errors
    return entry(node, doc.unique_id, doc.patient_id)


def entry(node, unique_id, patient=f.PATIENT):
    """The DocumentEntry, asked with a VIHF naming its patient."""
    vihf = fresh_vihf(claims=alice_claims(patient=patient_ins(patient)))
    reply = post(node.registry, ITI18, adhoc_query(GET_DOCS, [("$XDSDocumentEntryUniqueId", [f"('{unique_id}')"])]),
                 mtom=False, vihf=vihf)
    assert reply.status == "Success", reply.errors
    (eo,) = reply.body.iter(f"{{{RIM}}}ExtrinsicObject")
    return eo


def find(node, statuses, patient=f.PATIENT):
    values = "(" + ",".join(f"'{s}'" for s in statuses) + ")"
    reply = post(node.registry, ITI18, adhoc_query(FIND, [("$XDSDocumentEntryPatientId", [f"'{patient}'"]),
                                                          ("$XDSDocumentEntryStatus", [values])]), mtom=False)
    assert reply.status == "Success", reply.errors
    return {eo.get("id"): eo.get("status") for eo in reply.body.iter(f"{{{RIM}}}ExtrinsicObject")}


def status_update(target, original, new, *, ss=None, extra=()):
    ss = ss or f.submission_set()
    upd = _model.association_to_rim(_model.Association(
        entry_uuid="Upd01", association_type=AssociationType.UPDATE_AVAILABILITY_STATUS.value,
        source=ss.entry_uuid, target=target, original_status=original, new_status=new))
    return f.submit_objects_request([], ss=ss, extra=[upd, *extra])


def send(node, body):
    return post(node.registry, ITI57, body, mtom=False)


def test_archive_unarchive_delete(node):
    eo = register(node, f.Doc(b"archive me", "D"))
    uuid = eo.get("id")
    reply = send(node, status_update(uuid, APPROVED, ARCHIVED))
    assert reply.status == "Success", reply.errors
    assert reply.action == "urn:ihe:iti:2010:UpdateDocumentSetResponse"
    assert uuid not in find(node, [APPROVED])
    assert find(node, [ARCHIVED])[uuid] == ARCHIVED
    assert find(node, ["Archived"])[uuid] == ARCHIVED  # short status names are accepted
    assert send(node, status_update(uuid, ARCHIVED, APPROVED)).status == "Success"
    assert find(node, [APPROVED])[uuid] == APPROVED
    assert send(node, status_update(uuid, APPROVED, DELETED)).status == "Success"
    assert uuid not in find(node, [APPROVED, ARCHIVED, DEPRECATED])
    assert find(node, [DELETED])[uuid] == DELETED


def test_original_status_must_match(node):
    uuid = register(node, f.Doc(b"x", "D")).get("id")
    reply = send(node, status_update(uuid, ARCHIVED, APPROVED))
    assert reply.status == "Failure"
    assert reply.problems == [Problem.ORIGINAL_STATUS_MISMATCH]
    assert find(node, [APPROVED])[uuid] == APPROVED


def test_forbidden_transition(node):
    uuid = register(node, f.Doc(b"x", "D")).get("id")
    assert send(node, status_update(uuid, APPROVED, DELETED)).status == "Success"
    reply = send(node, status_update(uuid, DELETED, APPROVED))
    assert reply.error_codes == ["XDSMetadataUpdateOperationError"]


def test_unknown_target_and_other_patient(node):
    reply = send(node, status_update("urn:uuid:00000000-0000-4000-8000-000000000000", APPROVED, ARCHIVED))
    assert reply.status == "Failure"
    assert "XDSMetadataUpdateError" in reply.error_codes
    other = register(node, f.Doc(b"y", "D", patient_id=f.OTHER_PATIENT)).get("id")
    # The VIHF (and the SubmissionSet) name PATIENT; the object changed is OTHER_PATIENT's: the DMP refuses the
    # whole request before the registry sees it (docs/vihf.md §7 step 9), nothing changes.
    reply = send(node, status_update(other, APPROVED, ARCHIVED))
    assert reply.http_status == 400
    assert reply.fault_subcode.endswith("DMPAccessDenied")
    assert find(node, [APPROVED], patient=f.OTHER_PATIENT)[other] == APPROVED
    # Without a caller (the registry's own rule, ITI TF-3 §4.2.4): XDSPatientIdDoesNotMatch.
    assert engine_update(node, status_update(other, APPROVED, ARCHIVED)).errors[0].code.value == \
        "XDSPatientIdDoesNotMatch"
    assert find(node, [APPROVED], patient=f.OTHER_PATIENT)[other] == APPROVED


def engine_update(node, body):
    """ITI-57 run by the registry on the node's database, without the consent checker in front."""
    store = Store(node.config.database_url)
    try:
        return Registry(store).update_request(body)
    finally:
        store.dispose()


def metadata_update(eo, *, previous="1", meta=None, unique_id=None, patient=f.PATIENT, propagation=None):
    doc = f.Doc(b"masked", "NewVersion", unique_id=unique_id or _uid(eo), patient_id=patient,
                send_hash=False, meta=meta or {})
    de = _model.document_entry_to_rim(f.document_entry(doc))
    de.lid = eo.get("lid")
    ss = f.submission_set(patient)
    hm = _model.Association(entry_uuid="hm", association_type=AssociationType.HAS_MEMBER.value,
                            source=ss.entry_uuid, target="NewVersion", submission_set_status="Original",
                            previous_version=previous)
    if propagation:
        hm.extra_slots.append(_rim.Slot("AssociationPropagation", [propagation]))
    return f.submit_objects_request([], ss=ss, extra=[de, _model.association_to_rim(hm)])


def _uid(eo):
    return next(e.get("value") for e in eo.iter(f"{{{RIM}}}ExternalIdentifier")
                if e.get("identificationScheme") == "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab")


MASQUE_PS = _model.Code("MASQUE_PS", "1.2.250.1.213.1.1.4.13", "Masqué aux professionnels de santé")
NORMAL = _model.Code("N", "2.16.840.1.113883.5.25", "Normal")


def test_masking_creates_a_new_version(node):
    eo = register(node, f.Doc(b"to mask", "D"))
    reply = send(node, metadata_update(eo, meta={"confidentiality_codes": [NORMAL, MASQUE_PS]}))
    assert reply.status == "Success", reply.errors
    new = entry(node, _uid(eo))
    assert new.get("lid") == eo.get("lid")
    assert new.get("id") != eo.get("id")
    assert new.find(f"{{{RIM}}}VersionInfo").get("versionName") == "2"
    codes = {c.get("nodeRepresentation") for c in new.iter(f"{{{RIM}}}Classification")
             if c.get("classificationScheme") == "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"}
    assert codes == {"N", "MASQUE_PS"}
    slots = {s.get("name"): s.findtext(f"{{{RIM}}}ValueList/{{{RIM}}}Value") for s in new.iter(f"{{{RIM}}}Slot")}
    assert slots["hash"] == f.Doc(b"to mask", "x").sha1  # repository attributes carried over
    statuses = find(node, [APPROVED, DEPRECATED])
    assert statuses[eo.get("id")] == DEPRECATED
    assert statuses[new.get("id")] == APPROVED
    # Querying by LogicalID returns every version.
    by_lid = adhoc_query(GET_DOCS, [("$XDSDocumentEntryLogicalID", [f"('{eo.get('lid')}')"])])
    reply = post(node.registry, ITI18, by_lid, mtom=False)
    assert {x.get("id") for x in reply.body.iter(f"{{{RIM}}}ExtrinsicObject")} == {eo.get("id"), new.get("id")}


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"previous": "7"}, "XDSMetadataVersionError"),
    ({"unique_id": "1.2.250.1.999.1.1.99.1"}, "XDSMetadataUpdateError"),
    ({"patient": f.OTHER_PATIENT}, "XDSPatientIDReconciliationError"),
])
def test_metadata_update_errors(node, kwargs, code):
    eo = register(node, f.Doc(b"z", "D"))
    if "patient" in kwargs:
        # Another patient's new version of PATIENT's document: over HTTP the VIHF's patient is not the patient of
        # the object changed (refused, docs/vihf.md §7 step 9); the registry's own answer is the IHE code.
        reply = send(node, metadata_update(eo, **kwargs))
        assert reply.fault_subcode.endswith("DMPAccessDenied")
        assert code in [e.code.value for e in engine_update(node, metadata_update(eo, **kwargs)).errors]
    else:
        reply = send(node, metadata_update(eo, **kwargs))
        assert reply.status == "Failure"
        assert code in reply.error_codes, reply.errors
    assert find(node, [APPROVED])[eo.get("id")] == APPROVED


def test_update_of_unknown_logical_id(node):
    eo = register(node, f.Doc(b"w", "D"))
    body = metadata_update(eo)
    for el in body.iter(f"{{{RIM}}}ExtrinsicObject"):
        el.set("lid", "urn:uuid:11111111-1111-4111-8111-111111111111")
    assert send(node, body).error_codes == ["XDSMetadataVersionError"]


def test_update_of_a_deprecated_version_is_refused(node):
    eo = register(node, f.Doc(b"v", "D"))
    assert send(node, metadata_update(eo)).status == "Success"
    reply = send(node, metadata_update(eo))  # PreviousVersion 1 again: no longer the latest
    assert reply.status == "Failure"
    assert "XDSMetadataVersionError" in reply.error_codes


def test_registration_endpoint_refuses_update_associations(node):
    uuid = register(node, f.Doc(b"u", "D")).get("id")
    reply = post(node.registry, ITI42, status_update(uuid, APPROVED, ARCHIVED), mtom=False)
    assert reply.status == "Failure"
    assert Problem.UPDATE_ASSOCIATION_IN_REGISTRATION in reply.problems


def register_in_folder(node, doc):
    ss = f.submission_set()
    fd = _model.folder_to_rim(_model.Folder(
        entry_uuid="Folder01", title=_model.Text("Suivi"), patient_id=f.PATIENT, unique_id=f.new_oid(),
        codes=[_model.Code("SUIVI", "1.2.250.1.999.9", "Suivi")]))
    assocs = [
        _model.Association(entry_uuid="a-ss-fd", association_type=AssociationType.HAS_MEMBER.value,
                           source="SubmissionSet01", target="Folder01"),
        _model.Association(entry_uuid="a-fd-de", association_type=AssociationType.HAS_MEMBER.value,
                           source="Folder01", target=doc.symbolic_id),
        _model.Association(entry_uuid="a-ss-a", association_type=AssociationType.HAS_MEMBER.value,
                           source="SubmissionSet01", target="a-fd-de"),
    ]
    body = f.submit_objects_request([doc], ss=ss, repository_attributes=True,
                                    extra=[fd, *map(_model.association_to_rim, assocs)])
    reply = post(node.registry, ITI42, body, mtom=False)
    assert reply.status == "Success", reply.errors
    return entry(node, doc.unique_id)


def folders_of(node, entry_uuid):
    q = adhoc_query("urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578",
                    [("$XDSDocumentEntryEntryUUID", [f"'{entry_uuid}'"])])
    reply = post(node.registry, ITI18, q, mtom=False)
    assert reply.status == "Success", reply.errors
    return [p.get("id") for p in reply.body.iter(f"{{{RIM}}}RegistryPackage")]


@pytest.mark.parametrize("propagation", [None, "no"])
def test_folder_membership_follows_the_new_version(node, propagation):
    eo = register_in_folder(node, f.Doc(b"in a folder", "D"))
    (folder_id,) = folders_of(node, eo.get("id"))
    assert send(node, metadata_update(eo, propagation=propagation)).status == "Success"
    new = entry(node, _uid(eo))
    assert folders_of(node, new.get("id")) == ([] if propagation == "no" else [folder_id])


def test_get_documents_by_unique_id_gives_the_latest_version_of_each_entry_of_a_document_sent_twice(node):
    """The same document registered twice is two logical documents; after one is updated (ITI-57), a query by
    uniqueId returns the new version of the first and the only version of the second (docs/conformance.md §6)."""
    d = f.Doc(b"sent twice", "D")
    first = register(node, d)
    post(node.registry, ITI42, f.submit_objects_request([f.Doc(d.content, "D", unique_id=d.unique_id)],
                                                         repository_attributes=True), mtom=False)
    assert send(node, metadata_update(first, meta={"confidentiality_codes": [NORMAL, MASQUE_PS]})).status == "Success"
    for return_type, tag in (("LeafClass", "ExtrinsicObject"), ("ObjectRef", "ObjectRef")):
        query = adhoc_query(GET_DOCS, [("$XDSDocumentEntryUniqueId", [f"('{d.unique_id}')"])], return_type)
        reply = post(node.registry, ITI18, query, mtom=False)
        assert reply.status == "Success", reply.errors
        ids = {x.get("id") for x in reply.body.iter(f"{{{RIM}}}{tag}")}
        assert len(ids) == 2
        assert first.get("id") not in ids  # replaced by its version 2
        assert ids <= set(find(node, [APPROVED]))
