"""The DMP consent vocabulary: who asks (:class:`Caller`), what for (:class:`Action`), about which dossier
(:class:`Dossier`) and document (:class:`DocumentFacts`), and the answer (:class:`Decision`, :class:`Reason`).

Plain data only: the rules (``consent._rules``) are pure functions over these, the storage
(``consent._store``) reads and writes them. Rules and choices are documented in ``docs/consent.md``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

from pki import AuthMode, Principal, PurposeOfUse

# TRE_A07 confidentiality codes the DMP rules act on (DMP/CI-SIS, code system 1.2.250.1.213.1.1.4.13).
MASKED_TO_PROFESSIONALS: Final = "MASQUE_PS"
INVISIBLE_TO_PATIENT: Final = "INVISIBLE_PATIENT"
INVISIBLE_TO_REPRESENTATIVES: Final = "INVISIBLE_REPRESENTANTS_LEGAUX"
PATIENT_CLASS_CODE: Final = "90"          # TRE_A03 "Autres documents déposés par le patient"

PS_PROFESSION_SYSTEMS: Final = frozenset({
    "1.2.250.1.71.1.2.7",   # TRE_G15 professions (CPS)
    "1.2.250.1.71.1.2.8",   # TRE_G16 students' professions (CPF)
})
OCCUPATIONAL_SECTOR: Final = "SA13"       # TRE_R02 "Prévention et soins en entreprise"


class Action(enum.Enum):
    """What a caller asks to do; the DMP transaction it stands for in brackets (PDT-INF-526)."""

    EXISTENCE_TEST = "existence-test"              # TD0.2
    DECLARE_AUTHORIZATION = "declare-authorization"  # TD0.3 (after the patient's consent)
    REMOVE_OWN_AUTHORIZATION = "remove-own-authorization"  # TD0.3
    LIST_DOSSIERS = "list-dossiers"                # TD0.4
    LIST_AUTHORIZATIONS = "list-authorizations"    # TD1.6
    FEED = "feed"                                  # TD2.1/TD2.2, ITI-41/42
    REPLACE = "replace"                            # a new version of a document (RPLC, ITI-57 new version)
    SEARCH = "search"                              # TD3.1 metadata, ITI-18
    SEARCH_REFERENCES = "search-references"        # TD3.1 references only (ObjectRef), before a deletion
    READ = "read"                                  # TD3.2, ITI-43
    MASK = "mask"                                  # TD3.3a add MASQUE_PS
    UNMASK = "unmask"                              # TD3.3a remove MASQUE_PS
    MAKE_VISIBLE = "make-visible"                  # TD3.3b remove INVISIBLE_PATIENT
    ARCHIVE = "archive"                            # TD3.3d (and un-archive)
    DELETE = "delete"                              # TD3.3c
    # the patient's own administration (portal, or the operator on the patient's behalf)
    CREATE = "create"                              # R1: opened with the patient's consent
    AUTHORIZE = "authorize"
    REVOKE = "revoke"
    BLOCK = "block"
    UNBLOCK = "unblock"
    SET_TREATING_DOCTOR = "set-treating-doctor"
    SET_EMERGENCY_ACCESS = "set-emergency-access"
    READ_HISTORY = "read-history"
    CLOSE = "close"
    REOPEN = "reopen"
    # the patients' space (docs/portal.md): recorded in the history like every other action
    ACTIVATE = "activate"                          # the online space is opened with the creation code
    LOGIN = "login"                                # password and one-time code accepted (or refused)
    LOGOUT = "logout"
    SET_CONTACTS = "set-contacts"                  # e-mail, mobile, password
    SET_PREFERENCES = "set-preferences"            # notifications, trusted person, wishes (R34)
    EXPORT = "export"                              # a copy of the whole dossier (R13)

    @property
    def writes(self) -> bool:
        """Changes the dossier's content (refused on a closed dossier)."""
        return self not in _READS


_READS: Final = frozenset({Action.EXISTENCE_TEST, Action.LIST_DOSSIERS, Action.LIST_AUTHORIZATIONS, Action.SEARCH,
                           Action.SEARCH_REFERENCES, Action.READ, Action.READ_HISTORY, Action.REOPEN,
                           Action.LOGIN, Action.LOGOUT, Action.EXPORT,
                           Action.SET_CONTACTS})   # the patient's own contacts and password: not the DMP's content


class Reason(enum.Enum):
    """Why: (stable code, DMP fault subcode). Refusals answer with the subcode (PDT-INF-527; docs/consent.md)."""

    ALLOWED = ("allowed", "DMPOk")
    ALLOWED_EMERGENCY = ("allowed-emergency", "DMPOk")
    UNKNOWN_PATIENT = ("unknown-patient", "XDSUnknownPatientId")
    PATIENT_MISMATCH = ("patient-mismatch", "DMPAccessDenied")
    FORBIDDEN_PROFESSION = ("forbidden-profession", "DMPAccessDeniedByRightsService")
    BLOCKED = ("blocked", "DMPAccessDeniedByRightsService")
    DOSSIER_CLOSED = ("dossier-closed", "DMPAccessDeniedByRightsService")
    EMERGENCY_OPPOSED = ("emergency-opposed", "DMPAccessDeniedByRightsService")
    EMERGENCY_NOT_ALLOWED = ("emergency-not-allowed", "DMPAccessDeniedByRightsService")
    NOT_AUTHORIZED = ("not-authorized", "DMPAccessDeniedByRightsService")
    NOT_PERMITTED = ("not-permitted", "DMPAccessDeniedByRightsService")
    NOT_OWN_DOCUMENT = ("not-own-document", "DMPAccessDeniedByRightsService")
    PATIENT_DOCUMENT = ("patient-document", "DMPAccessDeniedByRightsService")
    DOCUMENT_HIDDEN = ("document-hidden", "DMPAccessDeniedByRightsService")
    FEEDING_OPPOSED = ("feeding-opposed", "DMPAccessDeniedByRightsService")
    PATIENT_CLASS_ONLY = ("patient-class-only", "DMPAccessDeniedByRightsService")
    SECRET_CONNECTION = ("secret-connection-requires-invisible", "DMPAccessDeniedByRightsService")
    TREATING_DOCTOR_CANNOT_BE_BLOCKED = ("treating-doctor-cannot-be-blocked", "DMPAccessDeniedByRightsService")
    UNAVAILABLE = ("consent-unavailable", "DMPServiceUnavailable")  # the database is down: nothing is served

    @property
    def code(self) -> str:
        return self.value[0]

    @property
    def dmp_subcode(self) -> str:
        return self.value[1]


class Notice(enum.Enum):
    """What the patient is told about (docs/notifications.md)."""

    DOSSIER_CREATED = "dossier-created"
    FIRST_ACCESS = "first-access"
    EMERGENCY_ACCESS = "emergency-access"
    NEW_DOCUMENT = "new-document"
    DOCUMENT_VISIBLE = "document-visible"
    DOSSIER_CLOSED = "dossier-closed"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: Reason
    trace: bool = True                       # every decision is traced (docs/consent.md)
    notify: frozenset[Notice] = frozenset()
    emergency: bool = False                  # bris de glace / Centre 15: flagged in the history

    @classmethod
    def deny(cls, reason: Reason) -> Decision:
        return cls(False, reason)

    def joined(self, other: Decision) -> Decision:
        """Both decisions at once (several actions or documents of one request): the first refusal as it is, or
        allowed with every notice of either."""
        if not self.allowed:
            return self
        if not other.allowed:
            return other
        return Decision(True, self.reason, notify=self.notify | other.notify,
                        emergency=self.emergency or other.emergency)


class AuthorizationState(enum.Enum):
    """States of a (professional, patient) pair (docs/consent.md)."""

    NONE = "NON_EXISTE"
    VALID = "VALIDE"
    BLOCKED = "INTERDIT"
    EXPIRED = "EXPIRE"


class Kind(enum.Enum):
    """The column of the permission matrix a caller falls in (docs/consent.md)."""

    PATIENT = "patient"
    REPRESENTATIVE = "representative"          # legal representative of a minor
    PROFESSIONAL = "professional"              # direct mode with a CPS/CPF (also e-CPS)
    REINFORCED_INDIRECT = "reinforced-indirect"  # AIR: a professional authenticated by a structure
    ADMINISTRATIVE = "administrative"          # direct mode with a CPE (non-PS staff)
    STRUCTURE_SYSTEM = "structure-system"      # indirect mode: a structure's system
    OCCUPATIONAL = "occupational"              # occupational medicine (never any access, R15)


@dataclass(frozen=True)
class PatientCaller:
    """The patient, or a legal representative, in their own space (or the operator acting on their behalf)."""

    patient_key: str
    representative: bool = False
    channel: str = "portal"                   # "portal", or "operator" for `dmp patient` commands
    name: str = "patient"


Caller = Principal | PatientCaller


def kind_of(caller: Caller) -> Kind:
    """The matrix column of ``caller`` (docs/consent.md)."""
    if isinstance(caller, PatientCaller):
        return Kind.REPRESENTATIVE if caller.representative else Kind.PATIENT
    if caller.sector == OCCUPATIONAL_SECTOR:
        return Kind.OCCUPATIONAL
    if caller.auth_mode is AuthMode.INDIRECT:
        return Kind.STRUCTURE_SYSTEM
    if caller.profession.code_system not in PS_PROFESSION_SYSTEMS:
        return Kind.ADMINISTRATIVE
    if caller.auth_mode is AuthMode.INDIRECT_REINFORCED:
        return Kind.REINFORCED_INDIRECT
    return Kind.PROFESSIONAL


def purpose_of(caller: Caller) -> PurposeOfUse:
    return caller.purpose_of_use if isinstance(caller, Principal) else PurposeOfUse.NORMAL


@dataclass(frozen=True)
class Dossier:
    """A patient's DMP as the rules see it."""

    patient_key: str
    closed: bool = False
    minor: bool = False
    treating_doctor: str | None = None                  # IdNat_PS of the médecin traitant
    authorizations: dict[str, AuthorizationState] = field(default_factory=dict)
    allow_break_glass: bool = True                      # R11: the patient may oppose each emergency mode
    allow_centre_15: bool = True
    masked_visible_in_emergency: bool = False           # PDT-INF-526 note 7
    feeding_opposed: bool = False                       # R26
    # Professionals known to have accessed the dossier already (rows of ``professional_access`` are never removed):
    # their accesses are not first accesses (R36). Loaded for the requesting professional only; not a rule input.
    accessed_by: frozenset[str] = frozenset()

    def authorization(self, professional_id: str) -> AuthorizationState:
        return self.authorizations.get(professional_id, AuthorizationState.NONE)
