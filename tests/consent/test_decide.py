"""The DMP rules, one test per rule (numbers of docs/consent.md "Rule numbers"). Pure: no database, no HTTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from consent import (
    Action,
    AuthorizationState,
    Dossier,
    Kind,
    Notice,
    PatientCaller,
    Reason,
    decide,
    kind_of,
    visibility,
)
from pki import AuthMode, CodedValue, PatientIns, Principal, PurposeOfUse, Software
from registry import DocumentFacts

KEY = "284067512345688^^^&1.2.250.1.213.1.4.10&ISO"
ALICE, BOB, MT, CAROL = "899700012349", "0751234567", "810000000011", "810000000029"
STRUCTURE, OTHER_STRUCTURE = "499700012349012", "499700024450014"
MASKED, INVISIBLE_PATIENT, INVISIBLE_REPR = "MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"
NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def ps(idnat: str = ALICE, *, profession: str = "10", system: str = "1.2.250.1.71.1.2.7",
       purpose: PurposeOfUse = PurposeOfUse.NORMAL, mode: AuthMode = AuthMode.DIRECT, sector: str = "SA07",
       structure: str = STRUCTURE, secret: bool = False) -> Principal:
    return Principal(
        assertion_id="_a", professional_id=idnat, name="Dr TEST", profession=CodedValue(profession, system),
        specialty=None, roles=(), structure_id=structure, sector=sector, auth_mode=mode, purpose_of_use=purpose,
        patient=PatientIns("284067512345688", "1.2.250.1.213.1.4.10"), software=Software("LPS", "H-1"),
        vihf_version="3.0", authn_context=None, secret_connection=secret, signer_subject="CN=x",
        issued_at=NOW, valid_until=NOW + timedelta(minutes=5))


def dossier(**changes: object) -> Dossier:
    base = Dossier(KEY, treating_doctor=MT, authorizations={ALICE: AuthorizationState.VALID,
                                                              BOB: AuthorizationState.VALID})
    return replace(base, **changes)  # type: ignore[arg-type]


def doc(*codes: str, author: str | None = ALICE, structure: str | None = STRUCTURE, by_patient: bool = False,
        class_code: str = "10", patient: str = KEY) -> DocumentFacts:
    return DocumentFacts("urn:uuid:e1", "urn:uuid:e1", "1.2.3", patient, confidentiality=frozenset(codes),
                         class_code=class_code, authors=frozenset({author} if author else set()),
                         submitter=None if by_patient else author,
                         submitter_structure=None if by_patient else structure, filed_by_patient=by_patient)


PATIENT = PatientCaller(KEY)
REPRESENTATIVE = PatientCaller(KEY, representative=True)
SECRETARY = ps("3" + "0B0037750/CPET0001", profession="SECRETAIRE", system="1.2.250.1.213.1.1.4.6")
STRUCTURE_SYSTEM = ps("1" + "0B0037750/SYS", mode=AuthMode.INDIRECT)


def allowed(caller: object, action: Action, d: Dossier | None = None, document: DocumentFacts | None = None,
            **kw: str) -> bool:
    return decide(caller, action, d if d is not None else dossier(), document, **kw).allowed  # type: ignore[arg-type]


def reason(caller: object, action: Action, d: Dossier | None = None, document: DocumentFacts | None = None,
           **kw: str) -> Reason:
    return decide(caller, action, d if d is not None else dossier(), document, **kw).reason  # type: ignore[arg-type]


def test_r1_no_dossier_is_an_unknown_patient():
    assert decide(ps(), Action.SEARCH, None).reason is Reason.UNKNOWN_PATIENT
    assert decide(PATIENT, Action.READ, None).reason is Reason.UNKNOWN_PATIENT


def test_r7_authorised_professional_reads_and_feeds():
    for action in (Action.SEARCH, Action.READ, Action.FEED):
        assert allowed(ps(), action), action
    assert allowed(ps(), Action.FEED, document=doc())
    assert allowed(ps(), Action.READ, document=doc(author=CAROL))


def test_r19_professional_without_authorisation_is_asked_to_declare_it():
    stranger = ps(CAROL)
    for action in (Action.SEARCH, Action.READ, Action.FEED, Action.MASK):
        assert reason(stranger, action) is Reason.NOT_AUTHORIZED, action
    assert allowed(stranger, Action.EXISTENCE_TEST)
    assert allowed(stranger, Action.DECLARE_AUTHORIZATION)
    expired = dossier(authorizations={CAROL: AuthorizationState.EXPIRED})
    assert reason(stranger, Action.SEARCH, expired) is Reason.NOT_AUTHORIZED


def test_r17_blocked_professional_is_refused_whatever_else_holds():
    blocked = dossier(authorizations={ALICE: AuthorizationState.BLOCKED})
    for action in (Action.SEARCH, Action.READ, Action.FEED, Action.DECLARE_AUTHORIZATION, Action.DELETE):
        assert reason(ps(), action, blocked) is Reason.BLOCKED, action
    for purpose in (PurposeOfUse.BREAK_GLASS, PurposeOfUse.CENTRE_15):
        assert reason(ps(purpose=purpose), Action.READ, blocked) is Reason.BLOCKED
    assert reason(ps(), Action.READ, blocked, doc()) is Reason.BLOCKED    # even on their own document
    assert allowed(ps(), Action.EXISTENCE_TEST, blocked)                  # the software learns the state


def test_r10_treating_doctor_sees_everything_including_masked_documents():
    mt = ps(MT)                                    # not in the authorisations: being MT is enough
    assert allowed(mt, Action.READ, document=doc(MASKED, author=CAROL))
    assert visibility(mt, dossier()).admits(doc(MASKED, author=CAROL))
    assert allowed(mt, Action.UNMASK, document=doc(MASKED, author=CAROL))


def test_r5_masked_documents_only_to_author_treating_doctor_and_patient():
    masked = doc(MASKED, author=CAROL)
    assert reason(ps(ALICE), Action.READ, document=masked) is Reason.DOCUMENT_HIDDEN
    assert not visibility(ps(ALICE), dossier()).admits(masked)
    assert allowed(ps(CAROL), Action.READ, dossier(authorizations={CAROL: AuthorizationState.VALID}), masked)
    assert allowed(PATIENT, Action.READ, document=masked)
    assert allowed(ps(ALICE), Action.MASK, document=doc(author=CAROL))    # any PS in normal mode may mask
    assert allowed(PATIENT, Action.MASK, document=doc(author=CAROL))


def test_n3_unmasking_is_for_the_author_or_the_treating_doctor():
    # Another professional does not even see a masked document (R5): answered as hidden.
    assert reason(ps(BOB), Action.UNMASK, document=doc(MASKED, author=CAROL)) is Reason.DOCUMENT_HIDDEN
    assert allowed(ps(BOB), Action.UNMASK, document=doc(MASKED, author=BOB))
    assert allowed(ps(MT), Action.UNMASK, document=doc(MASKED, author=CAROL))


def test_r9_documents_invisible_to_the_patient_until_made_visible():
    pending = doc(INVISIBLE_PATIENT)
    assert reason(PATIENT, Action.READ, document=pending) is Reason.DOCUMENT_HIDDEN
    assert not visibility(PATIENT, dossier()).admits(pending)
    assert allowed(ps(), Action.READ, document=pending)                   # professionals see it
    made_visible = decide(ps(), Action.MAKE_VISIBLE, dossier(), pending)
    assert made_visible.allowed
    assert Notice.DOCUMENT_VISIBLE in made_visible.notify
    assert not allowed(PATIENT, Action.MAKE_VISIBLE, document=pending)


def test_r27_documents_invisible_to_legal_representatives():
    secret = doc(INVISIBLE_REPR)
    assert not visibility(REPRESENTATIVE, dossier(minor=True)).admits(secret)
    assert visibility(PATIENT, dossier()).admits(secret)
    assert not visibility(REPRESENTATIVE, dossier(minor=True)).admits(doc(INVISIBLE_PATIENT))
    # A minor's secret connection: only documents invisible to the representatives may be filed.
    minor = dossier(minor=True)
    assert reason(ps(secret=True), Action.FEED, minor, doc()) is Reason.SECRET_CONNECTION
    assert allowed(ps(secret=True), Action.FEED, minor, doc(INVISIBLE_REPR))


def test_r11_emergency_access_allowed_unless_opposed_always_traced_and_notified():
    stranger = ps(CAROL, purpose=PurposeOfUse.BREAK_GLASS)        # no authorisation needed in an emergency
    decision = decide(stranger, Action.READ, dossier(), doc())
    assert decision.allowed
    assert decision.emergency
    assert decision.trace
    assert Notice.EMERGENCY_ACCESS in decision.notify
    assert reason(stranger, Action.READ, dossier(allow_break_glass=False)) is Reason.EMERGENCY_OPPOSED
    regulator = ps(CAROL, purpose=PurposeOfUse.CENTRE_15)
    assert allowed(regulator, Action.SEARCH, dossier(allow_break_glass=False))   # two separate settings
    assert reason(regulator, Action.SEARCH, dossier(allow_centre_15=False)) is Reason.EMERGENCY_OPPOSED
    assert reason(stranger, Action.MASK) is Reason.NOT_PERMITTED                   # no administration


def test_r11_emergency_modes_not_for_staff_cards_nor_break_glass_for_structures():
    for purpose in (PurposeOfUse.BREAK_GLASS, PurposeOfUse.CENTRE_15):
        assert reason(replace(SECRETARY, purpose_of_use=purpose), Action.FEED) is Reason.EMERGENCY_NOT_ALLOWED
    assert reason(replace(STRUCTURE_SYSTEM, purpose_of_use=PurposeOfUse.BREAK_GLASS), Action.FEED) \
        is Reason.EMERGENCY_NOT_ALLOWED
    assert allowed(replace(STRUCTURE_SYSTEM, purpose_of_use=PurposeOfUse.CENTRE_15), Action.FEED, document=doc())


def test_note7_masked_documents_in_an_emergency_only_if_the_patient_allowed_it():
    masked = doc(MASKED, author=CAROL)
    urgent = ps(BOB, purpose=PurposeOfUse.BREAK_GLASS)
    assert not visibility(urgent, dossier()).admits(masked)
    assert visibility(urgent, dossier(masked_visible_in_emergency=True)).admits(masked)
    assert not visibility(ps(MT, purpose=PurposeOfUse.BREAK_GLASS), dossier()).admits(masked)


def test_r21_administrative_staff_feed_but_do_not_read():
    assert kind_of(SECRETARY) is Kind.ADMINISTRATIVE
    assert allowed(SECRETARY, Action.FEED, document=doc())
    for action in (Action.SEARCH, Action.READ, Action.MASK):
        assert reason(SECRETARY, action) is Reason.NOT_PERMITTED, action
    assert allowed(SECRETARY, Action.SEARCH_REFERENCES)
    assert visibility(SECRETARY, dossier()).structure == STRUCTURE


def test_n12_structure_system_feeds_and_deletes_its_structure_documents_but_never_reads():
    assert kind_of(STRUCTURE_SYSTEM) is Kind.STRUCTURE_SYSTEM
    assert allowed(STRUCTURE_SYSTEM, Action.FEED, document=doc())
    assert allowed(STRUCTURE_SYSTEM, Action.DELETE, document=doc(author=CAROL, structure=STRUCTURE))
    assert reason(STRUCTURE_SYSTEM, Action.DELETE, document=doc(author=CAROL, structure=OTHER_STRUCTURE)) \
        is Reason.DOCUMENT_HIDDEN
    for action in (Action.SEARCH, Action.READ):
        assert reason(STRUCTURE_SYSTEM, action) is Reason.NOT_PERMITTED


def test_r15_professions_that_may_never_access_are_refused_whatever_else_holds():
    occupational = ps(ALICE, sector="SA13")
    assert kind_of(occupational) is Kind.OCCUPATIONAL
    for action in (Action.EXISTENCE_TEST, Action.SEARCH, Action.READ, Action.FEED):
        assert reason(occupational, action) is Reason.FORBIDDEN_PROFESSION     # though ALICE is authorised
    assert reason(ps(MT, sector="SA13", purpose=PurposeOfUse.BREAK_GLASS), Action.READ) \
        is Reason.FORBIDDEN_PROFESSION


def test_n1_n4_only_the_author_the_patient_or_the_treating_doctor_delete():
    assert allowed(ps(ALICE), Action.DELETE, document=doc(author=ALICE))
    assert reason(ps(BOB), Action.DELETE, document=doc(author=ALICE)) is Reason.NOT_OWN_DOCUMENT
    patients = doc(author=None, by_patient=True, class_code="90")
    assert allowed(PATIENT, Action.DELETE, document=patients)
    assert reason(PATIENT, Action.DELETE, document=doc(author=ALICE)) is Reason.NOT_OWN_DOCUMENT
    assert reason(ps(ALICE), Action.DELETE, document=patients) is Reason.PATIENT_DOCUMENT
    assert allowed(ps(MT), Action.DELETE, document=patients)
    assert reason(ps(MT), Action.DELETE, document=doc(author=ALICE)) is Reason.NOT_OWN_DOCUMENT


def test_r13_r29_closed_dossier_is_read_only_for_the_patient_and_closed_to_professionals():
    closed = dossier(closed=True)
    assert allowed(PATIENT, Action.READ, closed, doc())
    assert allowed(PATIENT, Action.READ_HISTORY, closed)
    assert allowed(PATIENT, Action.REOPEN, closed)
    for action in (Action.FEED, Action.MASK, Action.BLOCK):
        assert reason(PATIENT, action, closed) is Reason.DOSSIER_CLOSED, action
    for action in (Action.SEARCH, Action.READ, Action.FEED):
        assert reason(ps(MT), action, closed) is Reason.DOSSIER_CLOSED
    assert reason(ps(purpose=PurposeOfUse.BREAK_GLASS), Action.READ, closed) is Reason.DOSSIER_CLOSED
    assert allowed(ps(), Action.EXISTENCE_TEST, closed)
    assert not allowed(PATIENT, Action.REOPEN)                                 # an open dossier


def test_r26_feeding_opposed_refuses_professionals_not_the_patient():
    opposed = dossier(feeding_opposed=True)
    assert reason(ps(), Action.FEED, opposed, doc()) is Reason.FEEDING_OPPOSED
    assert allowed(PATIENT, Action.FEED, opposed, doc(author=None, class_code="90"))


def test_r4_patient_files_documents_of_class_90_only():
    assert allowed(PATIENT, Action.FEED, document=doc(author=None, class_code="90"))
    assert reason(PATIENT, Action.FEED, document=doc(author=None, class_code="10")) is Reason.PATIENT_CLASS_ONLY


def test_r33_the_treating_doctor_cannot_be_blocked():
    assert reason(PATIENT, Action.BLOCK, professional=MT) is Reason.TREATING_DOCTOR_CANNOT_BE_BLOCKED
    assert allowed(PATIENT, Action.BLOCK, professional=ALICE)


def test_r22_patient_administration_is_the_patient_s():
    for action in (Action.AUTHORIZE, Action.BLOCK, Action.SET_EMERGENCY_ACCESS, Action.CLOSE, Action.READ_HISTORY):
        assert allowed(PATIENT, action), action
        assert allowed(REPRESENTATIVE, action), action
        assert reason(ps(MT), action) is Reason.NOT_PERMITTED, action


def test_air_reads_like_a_professional_but_never_feeds():
    air = ps(ALICE, mode=AuthMode.INDIRECT_REINFORCED)
    assert kind_of(air) is Kind.REINFORCED_INDIRECT
    assert allowed(air, Action.READ, document=doc())
    assert reason(air, Action.FEED, document=doc()) is Reason.NOT_PERMITTED


def test_a_document_of_another_patient_is_a_mismatch():
    assert reason(ps(), Action.READ, document=doc(patient="188102B17295264^^^&1.2.250.1.213.1.4.10&ISO")) \
        is Reason.PATIENT_MISMATCH


@pytest.mark.parametrize("action", list(Action))
def test_every_action_is_decided_for_every_kind_of_caller(action):
    # The table is total: no (caller, action) pair raises, and refusals carry a DMP subcode.
    for caller in (PATIENT, REPRESENTATIVE, ps(), ps(MT), ps(CAROL), SECRETARY, STRUCTURE_SYSTEM,
                   ps(mode=AuthMode.INDIRECT_REINFORCED), ps(purpose=PurposeOfUse.CENTRE_15)):
        decision = decide(caller, action, dossier())
        assert decision.allowed or decision.reason.dmp_subcode.startswith(("DMP", "XDS"))


def test_r27_a_minor_acts_through_legal_representatives():
    minor = dossier(minor=True)
    assert reason(PATIENT, Action.READ, minor, doc()) is Reason.NOT_PERMITTED     # no access of their own
    assert reason(PATIENT, Action.BLOCK, minor, professional=ALICE) is Reason.NOT_PERMITTED
    assert allowed(REPRESENTATIVE, Action.READ, minor, doc())
    assert allowed(REPRESENTATIVE, Action.BLOCK, minor, professional=ALICE)


def test_n3_a_masking_that_changes_anything_else_is_an_amendment():
    from consent import version_actions

    plain = doc(author=CAROL)
    assert version_actions(plain, frozenset({MASKED})) == [Action.MASK]
    assert version_actions(plain, frozenset({MASKED}), content_changed=True) == [Action.MASK, Action.REPLACE]
    assert version_actions(doc(MASKED, author=CAROL), frozenset()) == [Action.UNMASK]
    assert version_actions(plain, frozenset()) == [Action.REPLACE]          # a new version changing nothing known
