"""The DMP's own services that professionals' software calls around the XDS transactions (PDT-INF-526):
TD0.2 existence and authorisation test, TD0.3 declaring (or removing) one's own authorisation after the
patient's consent, TD0.4 the dossiers one is authorised on, TD1.6 the authorised and blocked professionals.

Each is decided by the consent rules and traced in the patient's history like any access (TD0.4, which names
no patient, is decided on the caller's kind alone).
"""

from __future__ import annotations

from dataclasses import dataclass

from consent import _dossiers
from consent._guard import AccessRefused, Guard, Trace, database, unknown_patient
from consent._model import Action, AuthorizationState, Decision, Kind, Reason, kind_of
from consent._rules import decide
from pki import Principal, PurposeOfUse


@dataclass(frozen=True)
class Existence:
    """TD0.2's answer (the DMP's ``AUTORISATION`` and ``STATUT_MT``)."""

    exists: bool
    closed: bool
    authorization: AuthorizationState
    treating_doctor: bool


@dataclass(frozen=True)
class AuthorizationEntry:
    professional_id: str
    state: AuthorizationState
    since: str


class DmpServices:
    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def existence_test(self, principal: Principal, patient_key: str) -> Existence:
        """TD0.2: does the patient have a DMP, is the caller authorised on it, is the caller the médecin
        traitant. Answered to a blocked professional too (it learns INTERDIT), never to forbidden professions."""
        dossier = self.guard.dossier(patient_key, principal)
        if dossier is None:
            if kind_of(principal) is Kind.OCCUPATIONAL:
                raise AccessRefused(Reason.FORBIDDEN_PROFESSION, "this profession or sector never has access")
            return Existence(False, False, AuthorizationState.NONE, False)
        self.guard.admit(principal, Action.EXISTENCE_TEST, patient_key, transaction="TD0.2", dossier=dossier).record()
        me = principal.professional_id
        return Existence(True, dossier.closed, dossier.authorization(me), dossier.treating_doctor == me)

    def set_authorization(self, principal: Principal, patient_key: str, *, grant: bool) -> AuthorizationState:
        """TD0.3: the professional declares the patient's consent (R19) or removes their own authorisation.
        The declaration is the professional's word that the patient consented: traced as such."""
        action = Action.DECLARE_AUTHORIZATION if grant else Action.REMOVE_OWN_AUTHORIZATION
        me = principal.professional_id
        with database(), self.guard.store.write() as conn:
            dossier = _dossiers.load(conn, patient_key)
            decision = decide(principal, action, dossier)
            trace = Trace(self.guard, principal, action, patient_key, dossier, decision, "TD0.3",
                          detail="consent declared by the professional" if grant else "own authorisation removed")
            if decision.allowed:
                state = AuthorizationState.VALID if grant else None
                _dossiers.set_authorization(conn, patient_key, me, state, declared_by=f"professional:{me}",
                                            now=self.guard.clock())
                self.guard.write_trace(conn, trace)
                return state or AuthorizationState.NONE
        if dossier is None:
            raise unknown_patient(patient_key)
        self.guard.refuse(trace)

    def list_authorizations(self, principal: Principal, patient_key: str) -> list[AuthorizationEntry]:
        """TD1.6: the professionals authorised on or blocked from the dossier."""
        dossier = self.guard.dossier(patient_key, principal)
        if dossier is None:
            raise unknown_patient(patient_key)
        trace = self.guard.admit(principal, Action.LIST_AUTHORIZATIONS, patient_key, transaction="TD1.6",
                                 dossier=dossier)
        with database(), self.guard.store.read() as conn:
            entries = [AuthorizationEntry(p, s, at) for p, s, _by, at in _dossiers.authorizations(conn, patient_key)]
        trace.record()
        return entries

    def list_dossiers(self, principal: Principal) -> list[str]:
        """TD0.4: the dossiers the caller is authorised on or médecin traitant of (normal mode only)."""
        if kind_of(principal) not in (Kind.PROFESSIONAL, Kind.REINFORCED_INDIRECT) \
                or principal.purpose_of_use is not PurposeOfUse.NORMAL:
            decision = Decision.deny(Reason.FORBIDDEN_PROFESSION if kind_of(principal) is Kind.OCCUPATIONAL
                                     else Reason.NOT_PERMITTED)
            raise AccessRefused(decision.reason, "the list of DMPs is for professionals in normal access mode")
        with database(), self.guard.store.read() as conn:
            return _dossiers.dossiers_of(conn, principal.professional_id)
