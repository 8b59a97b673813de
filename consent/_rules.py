"""The DMP rules as a pure function: :func:`decide` (may this caller do this to this dossier, this document?)
and :func:`visibility` (which documents may this caller see at all?).

Decision order (docs/consent.md "Decision order"): unknown dossier; forbidden professions (R15, R23); blocked
professional (R17); closed dossier (R13, R29); emergency modes (R11); authorisation in normal mode (R7, R19);
the permission matrix (PDT-INF-526 v1.8, tables below); document-level rules (masking R5/R10, invisibility R9,
R27, own and structure documents, the patient's class 90 R4). Every decision is traced.
"""

from __future__ import annotations

import enum
from typing import Final

from consent._model import (
    INVISIBLE_TO_PATIENT,
    INVISIBLE_TO_REPRESENTATIVES,
    MASKED_TO_PROFESSIONALS,
    PATIENT_CLASS_CODE,
    Action,
    AuthorizationState,
    Caller,
    Decision,
    Dossier,
    Kind,
    Notice,
    PatientCaller,
    Reason,
    kind_of,
    purpose_of,
)
from pki import Principal, PurposeOfUse
from registry import DocumentFacts, DocumentFilter, Status

A = Action


class Scope(enum.Enum):
    """How far a permission reaches."""

    NO = "no"
    YES = "yes"                  # the action, on any document the caller can see
    OWN = "own"                  # only documents the caller authored or filed (PDT-INF-526 notes 6, 8)
    OWN_OR_PATIENT = "own-or-patient"  # the médecin traitant: own documents and the patient's (notes 4, "*")
    STRUCTURE = "structure"      # only documents filed by the caller's structure (note 9)
    PATIENT_OWN = "patient-own"  # the patient: only what the patient filed (class 90, R4; note n1)


Y, N, OWN, OWN_P, STRUCT, P_OWN = Scope.YES, Scope.NO, Scope.OWN, Scope.OWN_OR_PATIENT, Scope.STRUCTURE, \
    Scope.PATIENT_OWN
MT: Final = "treating-doctor"    # the médecin traitant's column (a professional whose IdNat is the dossier's MT)

_COLUMNS: Final[tuple[Kind | str, ...]] = (
    Kind.PATIENT, Kind.REPRESENTATIVE, MT, Kind.PROFESSIONAL, Kind.REINFORCED_INDIRECT, Kind.ADMINISTRATIVE,
    Kind.STRUCTURE_SYSTEM)


def _table(rows: dict[Action, tuple[Scope, ...]]) -> dict[tuple[Kind | str, Action], Scope]:
    return {(col, action): scope
            for action, scopes in rows.items() for col, scope in zip(_COLUMNS, scopes, strict=True)}


# Normal access (PurposeOfUse "normal"). Columns: patient, legal representative, médecin traitant, professional
# (direct), professional in AIR (reinforced indirect), administrative staff (CPE), structure system (indirect).
NORMAL: Final = _table({
    A.EXISTENCE_TEST:           (Y, Y, Y, Y, Y, Y, Y),
    A.DECLARE_AUTHORIZATION:    (N, N, Y, Y, Y, N, N),
    A.REMOVE_OWN_AUTHORIZATION: (N, N, Y, Y, Y, N, N),
    A.LIST_DOSSIERS:            (N, N, Y, Y, Y, N, N),
    A.LIST_AUTHORIZATIONS:      (Y, Y, Y, Y, Y, N, N),
    A.FEED:                     (Y, Y, Y, Y, N, Y, Y),          # AIR never feeds (PDT-INF-606)
    A.REPLACE:                  (P_OWN, P_OWN, OWN_P, OWN, OWN, STRUCT, STRUCT),
    A.SEARCH:                   (Y, Y, Y, Y, Y, N, N),          # CPE and structures read nothing (R21, n12)
    A.SEARCH_REFERENCES:        (Y, Y, Y, Y, Y, STRUCT, STRUCT),
    A.READ:                     (Y, Y, Y, Y, Y, N, N),
    A.MASK:                     (Y, Y, Y, Y, Y, N, N),
    A.UNMASK:                   (Y, Y, Y, OWN, OWN, N, N),
    A.MAKE_VISIBLE:             (N, N, Y, Y, Y, N, N),
    A.ARCHIVE:                  (P_OWN, P_OWN, Y, OWN, OWN, N, N),
    A.DELETE:                   (P_OWN, P_OWN, OWN_P, OWN, OWN, STRUCT, STRUCT),
    A.AUTHORIZE:                (Y, Y, N, N, N, N, N),
    A.REVOKE:                   (Y, Y, N, N, N, N, N),
    A.BLOCK:                    (Y, Y, N, N, N, N, N),
    A.UNBLOCK:                  (Y, Y, N, N, N, N, N),
    A.SET_TREATING_DOCTOR:      (Y, Y, N, N, N, N, N),
    A.SET_EMERGENCY_ACCESS:     (Y, Y, N, N, N, N, N),
    A.READ_HISTORY:             (Y, Y, N, N, N, N, N),
    A.CLOSE:                    (Y, Y, N, N, N, N, N),
    A.REOPEN:                   (Y, Y, N, N, N, N, N),
    A.ACTIVATE:                 (Y, Y, N, N, N, N, N),
    A.LOGIN:                    (Y, Y, N, N, N, N, N),
    A.LOGOUT:                   (Y, Y, N, N, N, N, N),
    A.SET_CONTACTS:             (Y, Y, N, N, N, N, N),
    A.SET_PREFERENCES:          (Y, Y, N, N, N, N, N),
    A.EXPORT:                   (Y, Y, N, N, N, N, N),
})

# Emergency access (bris de glace, Centre 15 regulation): read and feed, delete own documents; no
# administration, no masking (PDT-INF-526 columns "r" and "b"). Patients have no purpose of use.
EMERGENCY: Final = _table({
    A.EXISTENCE_TEST:           (N, N, Y, Y, Y, N, Y),
    A.FEED:                     (N, N, Y, Y, N, N, Y),
    A.SEARCH:                   (N, N, Y, Y, Y, N, N),
    A.SEARCH_REFERENCES:        (N, N, Y, Y, Y, N, STRUCT),
    A.READ:                     (N, N, Y, Y, Y, N, N),
    A.ARCHIVE:                  (N, N, Y, N, N, N, N),
    A.DELETE:                   (N, N, OWN_P, OWN, OWN, N, STRUCT),
})

# Actions a blocked professional or any caller may still ask: the existence test tells the software the state.
_ALWAYS_ANSWERED: Final = frozenset({A.EXISTENCE_TEST})
# Actions of a professional that need no authorisation on the dossier (R19: consent is collected, then TD0.3).
_WITHOUT_AUTHORIZATION: Final = frozenset({A.EXISTENCE_TEST, A.DECLARE_AUTHORIZATION, A.LIST_DOSSIERS,
                                           A.REMOVE_OWN_AUTHORIZATION})
_NOTICES: Final = {A.FEED: Notice.NEW_DOCUMENT, A.MAKE_VISIBLE: Notice.DOCUMENT_VISIBLE, A.CLOSE: Notice.DOSSIER_CLOSED}
_DELETED: Final = Status.DELETED.value


def column(caller: Caller, dossier: Dossier) -> Kind | str:
    """The caller's column of the matrix: its :class:`Kind`, or :data:`MT` for the médecin traitant."""
    kind = kind_of(caller)
    if (isinstance(caller, Principal) and kind in (Kind.PROFESSIONAL, Kind.REINFORCED_INDIRECT)
            and dossier.treating_doctor == caller.professional_id):
        return MT
    return kind


def decide(caller: Caller, action: Action, dossier: Dossier | None, document: DocumentFacts | None = None, *,
           professional: str | None = None) -> Decision:
    """May ``caller`` do ``action`` on ``dossier`` (and ``document``, for document actions; ``professional`` is
    the professional an administration action names)? Pure: everything it needs is in its arguments."""
    if dossier is None:
        return Decision.deny(Reason.UNKNOWN_PATIENT)
    if document is not None and document.patient_key != dossier.patient_key:
        return Decision.deny(Reason.PATIENT_MISMATCH)
    kind = kind_of(caller)
    if kind is Kind.OCCUPATIONAL:
        return Decision.deny(Reason.FORBIDDEN_PROFESSION)
    if isinstance(caller, Principal) and dossier.authorization(caller.professional_id) is AuthorizationState.BLOCKED \
            and action not in _ALWAYS_ANSWERED:
        return Decision.deny(Reason.BLOCKED)
    if dossier.closed and action is not A.EXISTENCE_TEST and (
            isinstance(caller, Principal) or (action.writes and action is not A.REOPEN)):
        return Decision.deny(Reason.DOSSIER_CLOSED)
    if isinstance(caller, PatientCaller) and action is A.REOPEN and not dossier.closed:
        return Decision.deny(Reason.NOT_PERMITTED)
    if isinstance(caller, PatientCaller) and dossier.minor and not caller.representative:
        return Decision.deny(Reason.NOT_PERMITTED)     # R27: a minor has no access of their own
    col = column(caller, dossier)
    purpose = purpose_of(caller)
    emergency = purpose is not PurposeOfUse.NORMAL
    if emergency:
        refused = _emergency_refusal(caller, purpose, dossier, kind)
        if refused is not None:
            return refused
        scope = EMERGENCY.get((col, action), N)
    else:
        scope = NORMAL.get((col, action), N)
        if (col in (Kind.PROFESSIONAL, Kind.REINFORCED_INDIRECT) and action not in _WITHOUT_AUTHORIZATION
                and isinstance(caller, Principal)
                and dossier.authorization(caller.professional_id) is not AuthorizationState.VALID):
            return Decision.deny(Reason.NOT_AUTHORIZED)
    if scope is N:
        return Decision.deny(Reason.NOT_PERMITTED)
    refused = _document_refusal(caller, action, dossier, document, scope, professional)
    if refused is not None:
        return refused
    notices = {_NOTICES[action]} if action in _NOTICES else set()
    if emergency:
        notices.add(Notice.EMERGENCY_ACCESS)
    return Decision(True, Reason.ALLOWED_EMERGENCY if emergency else Reason.ALLOWED, notify=frozenset(notices),
                    emergency=emergency)


def _emergency_refusal(caller: Caller, purpose: PurposeOfUse, dossier: Dossier, kind: Kind) -> Decision | None:
    """R11 (docs/consent.md step 6): CPE cards never use an emergency mode; a structure's system only Centre 15;
    each mode is refused when the patient opposed it."""
    if kind is Kind.ADMINISTRATIVE or (kind is Kind.STRUCTURE_SYSTEM and purpose is PurposeOfUse.BREAK_GLASS):
        return Decision.deny(Reason.EMERGENCY_NOT_ALLOWED)
    allowed = dossier.allow_break_glass if purpose is PurposeOfUse.BREAK_GLASS else dossier.allow_centre_15
    return None if allowed else Decision.deny(Reason.EMERGENCY_OPPOSED)


def _document_refusal(caller: Caller, action: Action, dossier: Dossier, document: DocumentFacts | None,
                      scope: Scope, professional: str | None) -> Decision | None:
    if action is A.BLOCK and professional is not None and professional == dossier.treating_doctor:
        return Decision.deny(Reason.TREATING_DOCTOR_CANNOT_BE_BLOCKED)   # R33
    if document is None:
        return None
    if action is A.FEED:
        return _feed_refusal(caller, dossier, document)
    if not visibility(caller, dossier).admits(document):
        return Decision.deny(Reason.DOCUMENT_HIDDEN)
    if scope is Y:
        return None
    own = isinstance(caller, Principal) and document.authored_by(caller.professional_id)
    allowed = {
        Scope.OWN: own,
        Scope.OWN_OR_PATIENT: own or document.filed_by_patient,
        Scope.PATIENT_OWN: document.filed_by_patient,
        Scope.STRUCTURE: isinstance(caller, Principal) and document.submitter_structure == caller.structure_id,
    }[scope]
    if allowed:
        return None
    return Decision.deny(Reason.PATIENT_DOCUMENT if document.filed_by_patient and scope is Scope.OWN
                         else Reason.NOT_OWN_DOCUMENT)


def _feed_refusal(caller: Caller, dossier: Dossier, document: DocumentFacts) -> Decision | None:
    if isinstance(caller, PatientCaller):
        # R4: the patient (or representative) files "other documents filed by the patient" only (class 90).
        return None if document.class_code == PATIENT_CLASS_CODE else Decision.deny(Reason.PATIENT_CLASS_ONLY)
    if dossier.feeding_opposed:
        return Decision.deny(Reason.FEEDING_OPPOSED)                   # R26
    if (caller.secret_connection and dossier.minor
            and INVISIBLE_TO_REPRESENTATIVES not in document.confidentiality):
        return Decision.deny(Reason.SECRET_CONNECTION)                 # R27, EX_2.1-1050
    return None


def visibility(caller: Caller, dossier: Dossier) -> DocumentFilter:
    """Which of the dossier's documents ``caller`` may see at all (docs/consent.md; R5, R9, R10, R27):
    masked documents only to their author, the médecin traitant and the patient (and in an emergency only if
    the patient allowed it); documents invisible to the patient hidden from the patient and representatives,
    those invisible to representatives from representatives, deleted documents from both; administrative staff
    and structures see only their structure's documents (references, before a deletion)."""
    if isinstance(caller, PatientCaller):
        hidden = {INVISIBLE_TO_PATIENT} | ({INVISIBLE_TO_REPRESENTATIVES} if caller.representative else set())
        return DocumentFilter(hidden_codes=frozenset(hidden), hidden_statuses=frozenset({_DELETED}))
    col = column(caller, dossier)
    if col in (Kind.ADMINISTRATIVE, Kind.STRUCTURE_SYSTEM):
        return DocumentFilter(structure=caller.structure_id)
    if col == MT and caller.purpose_of_use is PurposeOfUse.NORMAL:
        return DocumentFilter()
    if caller.purpose_of_use is not PurposeOfUse.NORMAL and dossier.masked_visible_in_emergency:
        return DocumentFilter()
    return DocumentFilter(hidden_unless_own=frozenset({MASKED_TO_PROFESSIONALS}), own=caller.professional_id)


def status_action(original: str | None, new: str | None) -> Action:
    """The action an ITI-57 status change stands for (docs/conformance.md §8): archive and un-archive (TD3.3d), delete
    (TD3.3c); IHE's Approved/Deprecated changes amend the document as a new version would."""
    if new == Status.DELETED.value:
        return A.DELETE
    if Status.ARCHIVED.value in (original, new):
        return A.ARCHIVE
    return A.REPLACE


def version_actions(previous: DocumentFacts, confidentiality: frozenset[str], *, content_changed: bool = False
                    ) -> list[Action]:
    """The actions an ITI-57 new version of ``previous`` carrying ``confidentiality`` stands for: masking and
    unmasking (TD3.3a), making visible to the patient or the representatives (TD3.3b); a new version that also
    changes anything else (``content_changed``), or nothing of those, amends the document (its author's, or the
    médecin traitant's, R26 rectification): a masking cannot carry another change past the author."""
    added, removed = confidentiality - previous.confidentiality, previous.confidentiality - confidentiality
    actions = []
    if MASKED_TO_PROFESSIONALS in added:
        actions.append(A.MASK)
    if MASKED_TO_PROFESSIONALS in removed:
        actions.append(A.UNMASK)
    if removed & {INVISIBLE_TO_PATIENT, INVISIBLE_TO_REPRESENTATIVES}:
        actions.append(A.MAKE_VISIBLE)
    if added & {INVISIBLE_TO_PATIENT, INVISIBLE_TO_REPRESENTATIVES} or content_changed or not actions:
        actions.append(A.REPLACE)
    return actions
