"""The consent checker end to end: real `dmp serve` (SQLite and PostgreSQL), real signed VIHFs of several
professionals, the `dmp patient` / `dmp history` commands on the node's data directory (docs/consent.md)."""

from __future__ import annotations

import json

import pytest
import zeep
from consent_client import (
    APPROVED,
    ARCHIVED,
    CAROL,
    DELETED,
    DOCTOR,
    FIND,
    GET_DOCS,
    MASQUE_PS,
    NORMAL,
    cli,
    doc,
    feed,
    find,
    history,
    new_patient,
    refused,
    retrieve,
    unique_ids,
    vihf,
)
from lxml import etree
from vihf_client import ALICE, BOB
from xds_client import ITI18, ITI42, ITI57, Reply, adhoc_query, post
from xds_factory import Doc, submit_objects_request

from pki import PsIdentity, PurposeOfUse
from registry import _model
from soap_wsdl import ns

# --- the VIHF's patient is the request's (docs/vihf.md §7 step 9) ---------------------------------------------


def test_a_vihf_about_one_patient_is_refused_on_another_for_every_transaction(node):
    a, b = new_patient(node), new_patient(node)
    theirs = doc(b"B's report", b)
    assert feed(node, ALICE, b, theirs).status == "Success"
    before = len(history(node, a))

    # ITI-41 and ITI-42: a submission for B under a VIHF naming A; nothing stored.
    sent = doc(b"filed into the wrong record", b)
    refused(feed(node, ALICE, b, sent, as_patient=a), "patient-mismatch", "DMPAccessDenied")
    refused(post(node.registry, ITI42, submit_objects_request([sent], repository_attributes=True), mtom=False,
                 vihf=vihf(ALICE, a)), "patient-mismatch", "DMPAccessDenied")
    assert unique_ids(find(node, ALICE, b)) == {theirs.unique_id}
    # ITI-18 by patient parameter and by id; ITI-43 of B's document.
    refused(post(node.registry, ITI18, adhoc_query(FIND, [("$XDSDocumentEntryPatientId", [f"'{b}'"]),
                                                          ("$XDSDocumentEntryStatus", [f"('{APPROVED}')"])]),
                 mtom=False, vihf=vihf(ALICE, a)), "patient-mismatch", "DMPAccessDenied")
    refused(post(node.registry, ITI18, adhoc_query(GET_DOCS, [("$XDSDocumentEntryUniqueId",
                                                               [f"('{theirs.unique_id}')"])]),
                 mtom=False, vihf=vihf(ALICE, a)), "patient-mismatch", "DMPAccessDenied")
    refused(retrieve(node, ALICE, a, theirs.unique_id), "patient-mismatch", "DMPAccessDenied")
    # ITI-57: archive B's document under A's VIHF (the SubmissionSet says A).
    entry = _entry_uuid(node, ALICE, b, theirs.unique_id)
    refused(post(node.registry, ITI57, _status_update(entry, APPROVED, ARCHIVED, a), mtom=False,
                 vihf=vihf(ALICE, a)), "patient-mismatch", "DMPAccessDenied")
    assert unique_ids(find(node, ALICE, b)) == {theirs.unique_id}

    # Every refusal is in A's history, with who asked and why; B's history has no trace of them.
    entries = history(node, a)[: len(history(node, a)) - before]
    assert [e["transaction"] for e in entries] == ["ITI-57", "ITI-43", "ITI-18", "ITI-18", "ITI-42", "ITI-41"]
    assert all(e["allowed"] is False and e["reason"] == "patient-mismatch" for e in entries)
    assert all(e["actor_id"] == ALICE.idnat_ps for e in entries)
    assert not [e for e in history(node, b) if e["allowed"] is False]


# --- authorisation (R7, R19), blocking (R17), médecin traitant (R10) -------------------------------------


def test_r19_a_professional_without_authorisation_is_refused_until_the_patient_authorises(node):
    p = new_patient(node)
    refused(find(node, CAROL, p), "not-authorized")
    cli(node, "patient", "authorize", "--ins", p, "--ps", CAROL.idnat_ps)
    assert unique_ids(find(node, CAROL, p)) == set()
    cli(node, "patient", "revoke", "--ins", p, "--ps", CAROL.idnat_ps)
    refused(find(node, CAROL, p), "not-authorized")


def test_r17_a_blocked_professional_is_refused_even_in_an_emergency(node):
    p = new_patient(node)
    d = doc(b"report", p)
    assert feed(node, BOB, p, d).status == "Success"
    cli(node, "patient", "block", "--ins", p, "--ps", BOB.idnat_ps)
    refused(find(node, BOB, p), "blocked")
    refused(find(node, BOB, p, purpose=PurposeOfUse.BREAK_GLASS), "blocked")
    refused(retrieve(node, BOB, p, d.unique_id), "blocked")
    refused(feed(node, BOB, p, doc(b"more", p)), "blocked")
    cli(node, "patient", "unblock", "--ins", p, "--ps", BOB.idnat_ps)
    refused(find(node, BOB, p), "not-authorized")      # unblocked is not authorised: NON_EXISTE
    # R33: the médecin traitant cannot be blocked.
    cli(node, "patient", "set-mt", "--ins", p, "--ps", DOCTOR.idnat_ps)
    assert "cannot be blocked" in cli(node, "patient", "block", "--ins", p, "--ps", DOCTOR.idnat_ps, code=2)


def test_r5_r10_masked_documents_are_hidden_from_other_professionals_everywhere(node):
    p = new_patient(node)
    cli(node, "patient", "set-mt", "--ins", p, "--ps", DOCTOR.idnat_ps)
    masked = doc(b"masked at the patient's request", p, confidentiality_codes=[NORMAL, MASQUE_PS])
    plain = Doc(b"plain", "Document01", patient_id=p)
    assert feed(node, BOB, p, masked).status == "Success"
    assert feed(node, BOB, p, plain).status == "Success"
    # ALICE (authorised) does not see it: not in FindDocuments (LeafClass or ObjectRef), not by id, and ITI-43
    # answers exactly as for a document that does not exist.
    assert unique_ids(find(node, ALICE, p)) == {plain.unique_id}
    assert len(list(find(node, ALICE, p, return_type="ObjectRef").body.iter(f"{{{ns.RIM}}}ObjectRef"))) == 1
    by_id = post(node.registry, ITI18, adhoc_query(GET_DOCS, [("$XDSDocumentEntryUniqueId",
                                                               [f"('{masked.unique_id}')"])]),
                 mtom=False, vihf=vihf(ALICE, p))
    assert unique_ids(by_id) == set()
    hidden, unknown = retrieve(node, ALICE, p, masked.unique_id), retrieve(node, ALICE, p, "1.2.250.1.999.404")
    assert hidden.error_codes == unknown.error_codes == ["XDSDocumentUniqueIdError"]
    assert hidden.errors[0]["codeContext"].replace(masked.unique_id, "X") == \
        unknown.errors[0]["codeContext"].replace("1.2.250.1.999.404", "X")
    # Its author and the médecin traitant see it.
    assert unique_ids(find(node, BOB, p)) == {plain.unique_id, masked.unique_id}
    assert unique_ids(find(node, DOCTOR, p)) == {plain.unique_id, masked.unique_id}
    assert retrieve(node, DOCTOR, p, masked.unique_id).documents() == {masked.unique_id: masked.content}


def test_r5_n3_masking_through_iti57_and_unmasking_by_the_author_only(node):
    p = new_patient(node)
    d = Doc(b"to be masked", "Document01", patient_id=p)
    assert feed(node, ALICE, p, d).status == "Success"
    assert unique_ids(find(node, BOB, p)) == {d.unique_id}
    # A masking cannot carry another change past the author: BOB's masking that also retitles is refused.
    retitled = _new_version(node, d, p, [NORMAL, MASQUE_PS], title="Titre modifié")
    refused(post(node.registry, ITI57, retitled, mtom=False, vihf=vihf(BOB, p)), "not-own-document")
    # Any authorised professional may mask (BOB masks ALICE's document): a new version with MASQUE_PS.
    masked = post(node.registry, ITI57, _new_version(node, d, p, [NORMAL, MASQUE_PS]), mtom=False,
                  vihf=vihf(BOB, p))
    assert masked.status == "Success", masked.errors
    assert unique_ids(find(node, BOB, p)) == set()            # BOB no longer sees it
    assert unique_ids(find(node, ALICE, p)) == {d.unique_id}  # its author does
    # Only its author (or the médecin traitant) unmasks: BOB does not even see it any more.
    refused(post(node.registry, ITI57, _new_version(node, d, p, [NORMAL], previous="2"), mtom=False,
                 vihf=vihf(BOB, p)), "document-hidden")
    unmasked = post(node.registry, ITI57, _new_version(node, d, p, [NORMAL], previous="2"), mtom=False,
                    vihf=vihf(ALICE, p))
    assert unmasked.status == "Success", unmasked.errors
    assert unique_ids(find(node, BOB, p)) == {d.unique_id}
    actions = [(e["actor_id"], e["action"], e["allowed"]) for e in history(node, p) if e["transaction"] == "ITI-57"]
    assert actions == [(ALICE.idnat_ps, "unmask", True), (BOB.idnat_ps, "unmask", False),
                       (BOB.idnat_ps, "mask", True), (BOB.idnat_ps, "replace", False)]


# --- emergency access (R11, R37) -------------------------------------------------------------------------


def test_r11_break_glass_reads_unless_opposed_and_is_flagged_in_the_history(node):
    p = new_patient(node)
    d = doc(b"allergies", p)
    assert feed(node, ALICE, p, d).status == "Success"
    assert unique_ids(find(node, CAROL, p, purpose=PurposeOfUse.BREAK_GLASS)) == {d.unique_id}
    assert retrieve(node, CAROL, p, d.unique_id, PurposeOfUse.CENTRE_15).documents() == {d.unique_id: d.content}
    newest = history(node, p)[:2]
    assert [(e["actor_id"], e["purpose"], e["emergency"]) for e in newest] == [
        (CAROL.idnat_ps, "centre_15", True), (CAROL.idnat_ps, "bris_de_glace", True)]
    cli(node, "patient", "oppose-emergency", "--ins", p, "--mode", "bris_de_glace")
    refused(find(node, CAROL, p, purpose=PurposeOfUse.BREAK_GLASS), "emergency-opposed")
    assert unique_ids(find(node, CAROL, p, purpose=PurposeOfUse.CENTRE_15)) == {d.unique_id}
    cli(node, "patient", "oppose-emergency", "--ins", p, "--mode", "bris_de_glace", "--withdraw")
    assert unique_ids(find(node, CAROL, p, purpose=PurposeOfUse.BREAK_GLASS)) == {d.unique_id}


# --- deletion (PDT-INF-526 notes 8, "*") and closure (R13, R29) --------------------------------------------


def test_only_the_author_deletes_a_document(node):
    p = new_patient(node)
    d = doc(b"to delete", p)
    assert feed(node, ALICE, p, d).status == "Success"
    entry = _entry_uuid(node, ALICE, p, d.unique_id)
    refused(post(node.registry, ITI57, _status_update(entry, APPROVED, DELETED, p), mtom=False,
                 vihf=vihf(BOB, p)), "not-own-document")
    ok = post(node.registry, ITI57, _status_update(entry, APPROVED, DELETED, p), mtom=False, vihf=vihf(ALICE, p))
    assert ok.status == "Success", ok.errors
    assert [e["action"] for e in history(node, p)[:2]] == ["delete", "delete"]
    assert [e["allowed"] for e in history(node, p)[:2]] == [True, False]


def test_r13_a_closed_dossier_is_closed_to_professionals_and_can_be_reopened(node):
    p = new_patient(node)
    cli(node, "patient", "close", "--ins", p)
    refused(find(node, ALICE, p), "dossier-closed")
    refused(feed(node, ALICE, p, doc(b"late", p)), "dossier-closed")
    shown = json.loads(cli(node, "patient", "show", "--ins", p, "--json"))
    assert shown["closed_at"]
    assert shown["purge_after"][:4] == str(int(shown["closed_at"][:4]) + 10)
    cli(node, "patient", "reopen", "--ins", p)
    assert unique_ids(find(node, ALICE, p)) == set()


def test_unknown_patient_is_xds_unknown_patient_id(node):
    stranger = "255069999999934^^^&1.2.250.1.213.1.4.10&ISO"
    reply = find(node, ALICE, stranger)
    assert reply.status == "Failure"
    assert reply.error_codes == ["XDSUnknownPatientId"]


# --- the DMP services desktop software calls first (TD0.2, TD0.3, TD0.4, TD1.6) ------------------------------

SERVICES = "urn:dmp-xds:services"
TD02 = "urn:hl7-org:v3:PRPA_IN201307UV02"
TD03 = "urn:si-dmp-habilitations:HabilitationsEndPoint:setAuthorization"
TD16 = "urn:si-dmp-habilitations:HabilitationsEndPoint:listAuthorizationByPatient"
TD04 = "urn:si-dmp-patients:PatientSpecificEndPoint:patientList"


def service(node, soap_action: str, ps: PsIdentity, patient: str, name: str, **children: str) -> Reply:
    body = etree.Element(f"{{{SERVICES}}}{name}", nsmap={"dmp": SERVICES})
    for tag, value in children.items():
        etree.SubElement(body, f"{{{SERVICES}}}{tag}").text = value
    return post(node.url + "/dmp/services", soap_action, body, mtom=False, vihf=vihf(ps, patient))


def answer(reply: Reply) -> dict[str, str]:
    assert reply.http_status == 200, reply.fault_reason
    assert reply.body.get("status") == "DMPOk"
    return {etree.QName(c).localname: c.text or "" for c in reply.body}


def test_desktop_flow_existence_test_declare_consent_then_query(node):
    p = new_patient(node)
    d = doc(b"for Carol", p)
    assert feed(node, ALICE, p, d).status == "Success"
    # TD0.2: the DMP exists, CAROL is not authorised, not the médecin traitant.
    status = answer(service(node, TD02, CAROL, p, "ExistenceTestRequest", patientId=p))
    assert (status["exists"], status["authorization"], status["treatingDoctor"]) == ("true", "NON_EXISTE", "false")
    refused(find(node, CAROL, p), "not-authorized")
    # TD0.3 after the patient's consent, then TD0.2 says VALIDE and ITI-18 answers.
    assert answer(service(node, TD03, CAROL, p, "SetAuthorizationRequest", patientId=p, action="AJOUT")) == {
        "authorization": "VALIDE"}
    assert answer(service(node, TD02, CAROL, p, "ExistenceTestRequest", patientId=p))["authorization"] == "VALIDE"
    assert unique_ids(find(node, CAROL, p)) == {d.unique_id}
    # TD1.6 lists the authorisations; TD0.4 lists CAROL's dossiers.
    listed = service(node, TD16, CAROL, p, "ListAuthorizationsRequest", patientId=p)
    assert answer(listed) is not None
    states = {a.get("professional"): a.get("state") for a in listed.body}
    assert states == {ALICE.idnat_ps: "VALIDE", BOB.idnat_ps: "VALIDE", CAROL.idnat_ps: "VALIDE"}
    mine = service(node, TD04, CAROL, p, "PatientListRequest")
    assert answer(mine) is not None
    assert p in [c.text for c in mine.body]
    # The history says who declared the consent.
    declared = [e for e in history(node, p) if e["transaction"] == "TD0.3"]
    assert declared[0]["actor_id"] == CAROL.idnat_ps
    assert declared[0]["detail"] == "consent declared by the professional"
    # TD0.3 SUPPRESSION removes it again.
    assert answer(service(node, TD03, CAROL, p, "SetAuthorizationRequest", patientId=p,
                          action="SUPPRESSION")) == {"authorization": "NON_EXISTE"}
    refused(find(node, CAROL, p), "not-authorized")


def test_a_blocked_professional_cannot_declare_itself_authorised(node):
    p = new_patient(node)
    cli(node, "patient", "block", "--ins", p, "--ps", CAROL.idnat_ps)
    assert answer(service(node, TD02, CAROL, p, "ExistenceTestRequest", patientId=p))["authorization"] == "INTERDIT"
    refused(service(node, TD03, CAROL, p, "SetAuthorizationRequest", patientId=p, action="AJOUT"), "blocked")
    refused(find(node, CAROL, p), "blocked")


def test_dmp_services_check_the_vihf_patient_and_an_unknown_dossier(node):
    a, b = new_patient(node), new_patient(node)
    refused(service(node, TD02, ALICE, a, "ExistenceTestRequest", patientId=b), "patient-mismatch", "DMPAccessDenied")
    stranger = "255069999999934^^^&1.2.250.1.213.1.4.10&ISO"
    assert answer(service(node, TD02, ALICE, stranger, "ExistenceTestRequest", patientId=stranger))["exists"] == \
        "false"
    refused(service(node, TD03, ALICE, stranger, "SetAuthorizationRequest", patientId=stranger, action="AJOUT"),
            "unknown-patient", "DMPAccessDenied")


def test_dmp_services_wsdl_lists_the_operations(node):
    client = zeep.Client(node.url + "/dmp/services?wsdl")
    try:
        operations = client.wsdl.bindings[next(iter(client.wsdl.bindings))]._operations
        actions = {op.soapaction for op in operations.values()}
        assert actions == {TD02, TD03, TD16, TD04}
    finally:
        client.transport.session.close()


# --- helpers ---------------------------------------------------------------------------------------------


def _entry_uuid(node, ps: PsIdentity, patient: str, unique_id: str) -> str:
    reply = post(node.registry, ITI18, adhoc_query(GET_DOCS, [("$XDSDocumentEntryUniqueId", [f"('{unique_id}')"])],
                                                   "ObjectRef"), mtom=False, vihf=vihf(ps, patient))
    (ref,) = reply.body.iter(f"{{{ns.RIM}}}ObjectRef")
    return ref.get("id", "")


def _new_version(node, d: Doc, patient: str, codes: list[_model.Code], previous: str = "1",
                 title: str | None = None):
    """An ITI-57 new version of ``d`` carrying ``codes`` as confidentialityCodes (docs/consent.md, mask)."""
    from xds_factory import document_entry, submission_set

    from registry._vocabulary import AssociationType
    reply = post(node.registry, ITI18, adhoc_query(GET_DOCS, [("$XDSDocumentEntryUniqueId", [f"('{d.unique_id}')"])]),
                 mtom=False, vihf=vihf(ALICE, patient))   # its author always sees it
    (eo,) = reply.body.iter(f"{{{ns.RIM}}}ExtrinsicObject")
    meta: dict[str, object] = {"confidentiality_codes": codes}
    if title is not None:
        meta["title"] = _model.Text(title, "fr-FR")
    version = Doc(d.content, "NewVersion", unique_id=d.unique_id, patient_id=patient, send_hash=False, meta=meta)
    de = _model.document_entry_to_rim(document_entry(version))
    de.lid = eo.get("lid")
    ss = submission_set(patient)
    hm = _model.Association(entry_uuid="hm", association_type=AssociationType.HAS_MEMBER.value,
                            source=ss.entry_uuid, target="NewVersion", submission_set_status="Original",
                            previous_version=previous)
    return submit_objects_request([], ss=ss, extra=[de, _model.association_to_rim(hm)])


def _status_update(target: str, original: str, new: str, patient: str):
    from xds_factory import submission_set

    from registry._vocabulary import AssociationType
    ss = submission_set(patient)
    upd = _model.association_to_rim(_model.Association(
        entry_uuid="Upd01", association_type=AssociationType.UPDATE_AVAILABILITY_STATUS.value,
        source=ss.entry_uuid, target=target, original_status=original, new_status=new))
    return submit_objects_request([], ss=ss, extra=[upd])


@pytest.fixture(autouse=True)
def _verify_histories_after_each_test(node):
    yield
    assert "every access history verifies" in cli(node, "history", "verify")
